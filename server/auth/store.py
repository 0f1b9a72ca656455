"""SQL for users and the broker keys for sessions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import Conflict
from server.tables import users


def session_key(token_hash: str) -> str:
    """Where one session or app token lives."""
    return f"session:{token_hash}"


def user_sessions_key(user_id: int) -> str:
    """The set of a user's session hashes, for revoking them together."""
    return f"session:user:{user_id}"


async def insert_user(conn: AsyncConnection, **values: Any) -> int:
    """Insert a user; a taken username, phone or email becomes a Conflict."""
    values.setdefault("created_at", dt.datetime.now(dt.UTC))
    try:
        result = await conn.execute(users.insert().values(**values))
    except IntegrityError as err:
        raise Conflict("That username, phone or email is taken.", code="taken") from err
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def fetch_user(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    """One user by id."""
    result = await conn.execute(sa.select(users).where(users.c.id == user_id))
    return result.mappings().first()


async def fetch_user_by_account(conn: AsyncConnection, account: str) -> RowMapping | None:
    """One user by username or phone."""
    query = sa.select(users).where(sa.or_(users.c.username == account, users.c.phone == account))
    result = await conn.execute(query)
    return result.mappings().first()
