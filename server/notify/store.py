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


async def insert_many(
    conn: AsyncConnection, rows: list[dict[str, Any]]
) -> list[RowMapping]:
    """Insert notifications in one statement; the stored rows, in the given order.

    A multi-row INSERT numbers its rows in the order of its VALUES, so sorting what
    RETURNING gives by id restores the order of rows. (Asking SQLAlchemy to keep
    the order instead makes it write SQLite rows one statement at a time.)
    """
    query = notifications.insert().returning(*notifications.c)
    stored = (await conn.execute(query, rows)).mappings().all()
    return sorted(stored, key=lambda row: row["id"])


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
