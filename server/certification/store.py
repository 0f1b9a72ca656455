"""SQL for enterprise bindings and unbind requests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import Conflict
from server.tables import enterprise_bindings, unbind_requests, users

LIVE = enterprise_bindings.c.ended_at.is_(None)


class EnterpriseTaken(Conflict):
    """409: another user holds the enterprise; the message says what to do next."""

    code = "enterprise_taken"
    message = (
        "该企业已被其他用户绑定。请咨询贵公司相关人员是否绑定过，使用已绑定的账号登录；"
        "如找不到该账号，请在“意见反馈”中提交解绑申请。"
    )


async def fetch_live_binding(
    conn: AsyncConnection, *, user_id: int | None = None, uscc: str | None = None
) -> RowMapping | None:
    """The live binding of a user, or of an enterprise."""
    query = sa.select(enterprise_bindings).where(LIVE)
    if user_id is not None:
        query = query.where(enterprise_bindings.c.user_id == user_id)
    if uscc is not None:
        query = query.where(enterprise_bindings.c.uscc == uscc)
    return (await conn.execute(query)).mappings().first()


async def insert_binding(conn: AsyncConnection, **values: Any) -> int:
    """Bind; the partial unique indexes turn a race into EnterpriseTaken."""
    values.setdefault("bound_at", dt.datetime.now(dt.UTC))
    try:
        result = await conn.execute(enterprise_bindings.insert().values(**values))
    except IntegrityError as err:
        if "user" in str(err.orig):
            raise Conflict(
                "您的账号已完成企业认证。", code="already_certified"
            ) from err
        raise EnterpriseTaken() from err
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def end_binding(conn: AsyncConnection, binding_id: int, by: str) -> None:
    """End a live binding."""
    await conn.execute(
        enterprise_bindings.update()
        .where(enterprise_bindings.c.id == binding_id, LIVE)
        .values(ended_at=dt.datetime.now(dt.UTC), ended_by=by)
    )


async def set_user_type(conn: AsyncConnection, user_id: int, user_type: str) -> None:
    """Change a user's type; certification is the only caller."""
    await conn.execute(
        users.update().where(users.c.id == user_id).values(user_type=user_type)
    )


async def insert_request(conn: AsyncConnection, **values: Any) -> int:
    """File an unbind request."""
    values.setdefault("created_at", dt.datetime.now(dt.UTC))
    result = await conn.execute(unbind_requests.insert().values(**values))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def fetch_request(conn: AsyncConnection, request_id: int) -> RowMapping | None:
    """One unbind request."""
    query = sa.select(unbind_requests).where(unbind_requests.c.id == request_id)
    return (await conn.execute(query)).mappings().first()


async def fetch_requests(
    conn: AsyncConnection, *, status: str | None = None, requester_id: int | None = None
) -> list[RowMapping]:
    """Unbind requests, oldest first, with the current holder's open orders."""
    holder = enterprise_bindings.alias("holder")
    holder_user = users.alias("holder_user")
    query = (
        sa.select(
            unbind_requests,
            holder_user.c.username.label("holder_username"),
            holder_user.c.unfinished_orders.label("holder_orders"),
        )
        .select_from(
            unbind_requests.outerjoin(
                holder,
                sa.and_(
                    holder.c.uscc == unbind_requests.c.uscc, holder.c.ended_at.is_(None)
                ),
            ).outerjoin(holder_user, holder_user.c.id == holder.c.user_id)
        )
        .order_by(unbind_requests.c.id)
    )
    if status is not None:
        query = query.where(unbind_requests.c.status == status)
    if requester_id is not None:
        query = query.where(unbind_requests.c.requester_id == requester_id)
    return list((await conn.execute(query)).mappings().all())


async def decide_request(
    conn: AsyncConnection,
    request_id: int,
    *,
    status: str,
    reviewer_id: int,
    reason: str | None,
) -> bool:
    """Move a pending request to approved or rejected; False if it was not pending."""
    result = await conn.execute(
        unbind_requests.update()
        .where(
            unbind_requests.c.id == request_id, unbind_requests.c.status == "pending"
        )
        .values(
            status=status,
            reviewer_id=reviewer_id,
            reject_reason=reason,
            reviewed_at=dt.datetime.now(dt.UTC),
        )
    )
    return bool(result.rowcount)


async def unfinished_orders(conn: AsyncConnection, user_id: int) -> int:
    """The service vouchers and orders a user has not finished."""
    query = sa.select(users.c.unfinished_orders).where(users.c.id == user_id)
    return int((await conn.execute(query)).scalar_one_or_none() or 0)
