"""SQL for programs, guides and short links."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import Conflict
from server.tables import guides, programs, short_links


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def insert_program(conn: AsyncConnection, **values: Any) -> int:
    """Add a program; returns its id."""
    values.setdefault("created_at", _now())
    values.setdefault("updated_at", values["created_at"])
    result = await conn.execute(programs.insert().values(**values))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def update_program(conn: AsyncConnection, program_id: int, **values: Any) -> bool:
    """Change a program; False when there is no such program."""
    values["updated_at"] = _now()
    result = await conn.execute(
        programs.update().where(programs.c.id == program_id).values(**values)
    )
    return bool(result.rowcount)


async def fetch_program(conn: AsyncConnection, program_id: int) -> RowMapping | None:
    """One program."""
    query = sa.select(programs).where(programs.c.id == program_id)
    return (await conn.execute(query)).mappings().first()


async def fetch_program_by_title(
    conn: AsyncConnection, title: str
) -> RowMapping | None:
    """The newest program with this exact title."""
    query = (
        sa.select(programs)
        .where(programs.c.title == title)
        .order_by(programs.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).mappings().first()


async def fetch_programs(
    conn: AsyncConnection,
    *,
    statuses: tuple[str, ...],
    text: str = "",
    department: str = "",
) -> list[RowMapping]:
    """Programs in the given statuses, newest window first, matching the search."""
    query = sa.select(programs).where(programs.c.status.in_(statuses))
    if text:
        pattern = (
            "%"
            + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        query = query.where(
            sa.or_(
                programs.c.title.ilike(pattern, escape="\\"),
                programs.c.summary.ilike(pattern, escape="\\"),
                programs.c.department.ilike(pattern, escape="\\"),
            )
        )
    if department:
        query = query.where(programs.c.department == department)
    query = query.order_by(programs.c.opens_at.desc(), programs.c.id.desc())
    return list((await conn.execute(query)).mappings().all())


async def fetch_departments(conn: AsyncConnection) -> list[str]:
    """The departments of published programs, for the filter."""
    query = (
        sa.select(programs.c.department)
        .where(programs.c.status == "published")
        .distinct()
        .order_by(programs.c.department)
    )
    return [str(d) for d in (await conn.execute(query)).scalars().all()]


async def fetch_guide(conn: AsyncConnection, slug: str) -> RowMapping | None:
    """One guide page by its slug."""
    query = sa.select(guides).where(guides.c.slug == slug)
    return (await conn.execute(query)).mappings().first()


async def fetch_guides(conn: AsyncConnection) -> list[RowMapping]:
    """Every guide page."""
    return list(
        (await conn.execute(sa.select(guides).order_by(guides.c.slug))).mappings().all()
    )


async def upsert_guide(conn: AsyncConnection, slug: str, **values: Any) -> None:
    """Write a guide page, creating it on first save."""
    values["updated_at"] = _now()
    result = await conn.execute(
        guides.update().where(guides.c.slug == slug).values(**values)
    )
    if result.rowcount:
        return
    try:
        await conn.execute(guides.insert().values(slug=slug, **values))
    except IntegrityError as err:
        raise Conflict(
            "该页面正在被另一位工作人员保存，请刷新后重试。", code="guide_conflict"
        ) from err


async def insert_short_link(conn: AsyncConnection, **values: Any) -> None:
    """Add a short link; a taken code is a conflict."""
    values.setdefault("created_at", _now())
    try:
        await conn.execute(short_links.insert().values(**values))
    except IntegrityError as err:
        raise Conflict("该短链接代码已被占用。", code="code_taken") from err


async def update_short_link(conn: AsyncConnection, code: str, target: str) -> bool:
    """Point a short link elsewhere; its hits stay."""
    result = await conn.execute(
        short_links.update().where(short_links.c.code == code).values(target=target)
    )
    return bool(result.rowcount)


async def hit_short_link(conn: AsyncConnection, code: str) -> str | None:
    """Count one visit and return the target, in one statement (no lost updates)."""
    result = await conn.execute(
        short_links.update()
        .where(short_links.c.code == code)
        .values(hits=short_links.c.hits + 1)
        .returning(short_links.c.target)
    )
    return result.scalar_one_or_none()


async def fetch_short_links(conn: AsyncConnection) -> list[RowMapping]:
    """Every short link, newest first."""
    query = sa.select(short_links).order_by(short_links.c.id.desc())
    return list((await conn.execute(query)).mappings().all())


async def fetch_short_link(conn: AsyncConnection, code: str) -> RowMapping | None:
    """One short link."""
    query = sa.select(short_links).where(short_links.c.code == code)
    return (await conn.execute(query)).mappings().first()
