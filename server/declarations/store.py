"""SQL for declarations, their status history and their attachments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import Conflict
from server.tables import (
    declaration_attachments,
    declaration_events,
    declarations,
    programs,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AlreadyDeclared(Conflict):
    """409: the enterprise already has a declaration for this program; details.id."""

    code = "already_declared"
    message = "贵企业已经为该项目建立了申报书，请在“我的申报”中继续填写。"


async def insert(conn: AsyncConnection, **values: Any) -> int:
    """Add a draft; a second one for the same enterprise and program is a conflict."""
    values.setdefault("created_at", _now())
    values.setdefault("updated_at", values["created_at"])
    try:
        result = await conn.execute(declarations.insert().values(**values))
    except IntegrityError as err:
        raise AlreadyDeclared() from err
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def fetch_existing(
    conn: AsyncConnection, program_id: int, uscc: str
) -> int | None:
    """The id of the enterprise's declaration for a program, if any."""
    query = sa.select(declarations.c.id).where(
        declarations.c.program_id == program_id, declarations.c.uscc == uscc
    )
    return (await conn.execute(query)).scalar_one_or_none()


def _with_program() -> sa.Select[Any]:
    return sa.select(
        declarations,
        programs.c.title.label("program_title"),
        programs.c.status.label("program_status"),
        programs.c.opens_at.label("program_opens_at"),
        programs.c.closes_at.label("program_closes_at"),
    ).select_from(
        declarations.join(programs, programs.c.id == declarations.c.program_id)
    )


async def fetch_one(conn: AsyncConnection, declaration_id: int) -> RowMapping | None:
    """One declaration with its program's title and window."""
    query = _with_program().where(declarations.c.id == declaration_id)
    return (await conn.execute(query)).mappings().first()


async def fetch_many(
    conn: AsyncConnection,
    *,
    uscc: str | None = None,
    statuses: tuple[str, ...] | None = None,
) -> list[RowMapping]:
    """Declarations of one enterprise, or in some statuses, newest first."""
    query = _with_program().order_by(declarations.c.id.desc())
    if uscc is not None:
        query = query.where(declarations.c.uscc == uscc)
    if statuses is not None:
        query = query.where(declarations.c.status.in_(statuses))
    return list((await conn.execute(query)).mappings().all())


async def update_fields(
    conn: AsyncConnection, declaration_id: int, editable: tuple[str, ...], **values: Any
) -> bool:
    """Change fields while the declaration is in an editable status."""
    values["updated_at"] = _now()
    result = await conn.execute(
        declarations.update()
        .where(declarations.c.id == declaration_id, declarations.c.status.in_(editable))
        .values(**values)
    )
    return bool(result.rowcount)


async def move(
    conn: AsyncConnection,
    declaration_id: int,
    *,
    from_: tuple[str, ...],
    to: str,
    **values: Any,
) -> bool:
    """Compare-and-set the status; False when it was not in from_ any more."""
    values["updated_at"] = _now()
    result = await conn.execute(
        declarations.update()
        .where(declarations.c.id == declaration_id, declarations.c.status.in_(from_))
        .values(status=to, **values)
    )
    return bool(result.rowcount)


async def insert_event(conn: AsyncConnection, **values: Any) -> None:
    """Append one line to the status history."""
    values.setdefault("at", _now())
    await conn.execute(declaration_events.insert().values(**values))


async def fetch_events(conn: AsyncConnection, declaration_id: int) -> list[RowMapping]:
    """The status history, oldest first."""
    query = (
        sa.select(declaration_events)
        .where(declaration_events.c.declaration_id == declaration_id)
        .order_by(declaration_events.c.id)
    )
    return list((await conn.execute(query)).mappings().all())


async def insert_attachment(conn: AsyncConnection, **values: Any) -> int:
    """Record a stored attachment."""
    values.setdefault("uploaded_at", _now())
    result = await conn.execute(declaration_attachments.insert().values(**values))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def fetch_attachments(
    conn: AsyncConnection, declaration_id: int
) -> list[RowMapping]:
    """A declaration's attachments, in upload order."""
    query = (
        sa.select(declaration_attachments)
        .where(declaration_attachments.c.declaration_id == declaration_id)
        .order_by(declaration_attachments.c.id)
    )
    return list((await conn.execute(query)).mappings().all())


async def fetch_attachment(
    conn: AsyncConnection, declaration_id: int, attachment_id: int
) -> RowMapping | None:
    """One attachment of one declaration."""
    query = sa.select(declaration_attachments).where(
        declaration_attachments.c.id == attachment_id,
        declaration_attachments.c.declaration_id == declaration_id,
    )
    return (await conn.execute(query)).mappings().first()


async def delete_attachment(conn: AsyncConnection, attachment_id: int) -> None:
    """Forget an attachment's row."""
    await conn.execute(
        declaration_attachments.delete().where(
            declaration_attachments.c.id == attachment_id
        )
    )
