"""SQL for users and the broker keys for sessions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import Conflict
from server.tables import consents, users


def session_key(token_hash: str) -> str:
    """Where one session or app token lives."""
    return f"session:{token_hash}"


def user_sessions_key(user_id: int) -> str:
    """The set of a user's session hashes, for revoking them together."""
    return f"session:user:{user_id}"


def _taken(err: IntegrityError) -> Conflict:
    """Name the unique column a clash was on, on PostgreSQL and SQLite alike."""
    text = str(err.orig)
    for column, message in (
        ("phone", "该手机号已注册，请直接登录。"),
        ("username", "该用户名已被占用，请换一个。"),
        ("email", "该邮箱已被使用。"),
    ):
        if f"uq_users_{column}" in text or f"users.{column}" in text:
            return Conflict(message, code=f"{column}_taken", details={column: "taken"})
    return Conflict("That account already exists.", code="taken")


async def insert_user(conn: AsyncConnection, **values: Any) -> int:
    """Insert a user; a taken username, phone or email becomes a Conflict naming it."""
    values.setdefault("created_at", dt.datetime.now(dt.UTC))
    try:
        result = await conn.execute(users.insert().values(**values))
    except IntegrityError as err:
        raise _taken(err) from err
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def update_user(conn: AsyncConnection, user_id: int, **values: Any) -> None:
    """Change columns of one user; a taken phone or email becomes a Conflict."""
    try:
        await conn.execute(users.update().where(users.c.id == user_id).values(**values))
    except IntegrityError as err:
        raise _taken(err) from err


async def insert_consents(
    conn: AsyncConnection, user_id: int, ip: str, documents: dict[str, str]
) -> None:
    """Record which versions of which documents a user agreed to, and when."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "user_id": user_id,
            "document": name,
            "version": version,
            "accepted_at": now,
            "ip": ip,
        }
        for name, version in documents.items()
    ]
    await conn.execute(consents.insert(), rows)


async def record_failure(
    conn: AsyncConnection, user_id: int, *, now: float, threshold: int, lock_for: float
) -> float | None:
    """Count one wrong password in one statement; returns the lock's end if it locked.

    A lock that has run out starts the count again, so five fresh failures are needed
    to lock again; failures during a lock never reach here, so they cannot extend it.
    """
    expired = sa.and_(users.c.locked_until.is_not(None), users.c.locked_until <= now)
    count = sa.case((expired, 1), else_=users.c.failed_logins + 1)
    locked = sa.case((count >= threshold, now + lock_for), else_=sa.null())
    query = (
        users.update()
        .where(users.c.id == user_id)
        .values(failed_logins=count, locked_until=locked)
        .returning(users.c.locked_until)
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def clear_failures(conn: AsyncConnection, user_id: int) -> None:
    """A right password resets the count."""
    await conn.execute(
        users.update()
        .where(users.c.id == user_id)
        .values(failed_logins=0, locked_until=None)
    )


async def fetch_user(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    """One user by id."""
    result = await conn.execute(sa.select(users).where(users.c.id == user_id))
    return result.mappings().first()


async def fetch_user_by_account(
    conn: AsyncConnection, account: str
) -> RowMapping | None:
    """One user by username, phone or email."""
    query = sa.select(users).where(
        sa.or_(
            users.c.username == account,
            users.c.phone == account,
            users.c.email == account,
        )
    )
    result = await conn.execute(query)
    return result.mappings().first()


async def username_exists(conn: AsyncConnection, username: str) -> bool:
    """Whether a username is taken."""
    query = sa.select(users.c.id).where(users.c.username == username)
    return (await conn.execute(query)).first() is not None


async def phone_exists(conn: AsyncConnection, phone: str) -> bool:
    """Whether a phone number is registered."""
    query = sa.select(users.c.id).where(users.c.phone == phone)
    return (await conn.execute(query)).first() is not None
