"""SQL for notifications."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from server.tables import notifications


def channel(user_id: int) -> str:
    """The pub/sub channel of one user's notifications."""
    return f"notify:{user_id}"


async def insert(conn: AsyncConnection, **values: Any) -> RowMapping:
    """Insert a notification and return the stored row."""
    values.setdefault("created_at", dt.datetime.now(dt.UTC))
    result = await conn.execute(notifications.insert().values(**values))
    new_id = result.inserted_primary_key[0]  # type: ignore[index]
    row = await conn.execute(
        sa.select(notifications).where(notifications.c.id == new_id)
    )
    return row.mappings().one()


async def fetch_after(
    conn: AsyncConnection, user_id: int, after: int, limit: int
) -> list[RowMapping]:
    """The user's notifications with ids above after, oldest first."""
    query = (
        sa.select(notifications)
        .where(notifications.c.user_id == user_id, notifications.c.id > after)
        .order_by(notifications.c.id)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings().all())


async def fetch_latest(
    conn: AsyncConnection, user_id: int, limit: int
) -> list[RowMapping]:
    """The user's newest notifications, newest first."""
    query = (
        sa.select(notifications)
        .where(notifications.c.user_id == user_id)
        .order_by(notifications.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings().all())


async def count_unread(conn: AsyncConnection, user_id: int) -> int:
    """How many of the user's notifications are unread."""
    query = sa.select(sa.func.count()).where(
        notifications.c.user_id == user_id, notifications.c.read_at.is_(None)
    )
    return int((await conn.execute(query)).scalar_one())


async def mark_read(
    conn: AsyncConnection, user_id: int, notification_id: int | None
) -> int:
    """Mark one (or, with None, every) unread notification of the user as read."""
    query = notifications.update().where(
        notifications.c.user_id == user_id, notifications.c.read_at.is_(None)
    )
    if notification_id is not None:
        query = query.where(notifications.c.id == notification_id)
    result = await conn.execute(query.values(read_at=dt.datetime.now(dt.UTC)))
    return int(result.rowcount or 0)
