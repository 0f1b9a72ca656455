"""The rules of enterprise certification and of unbinding.

An enterprise is bound to at most one user and a user to at most one enterprise at
a time; the database enforces both under races. Binding makes the user an enterprise
user and ending the binding makes them an individual again: this module is the one
place a user's type changes. Unbinding goes through a request that platform staff
review; a request is held back while the current holder has unfinished orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from server.audit import Audit
from server.auth.service import User, normalise_phone
from server.auth.usercache import UserCache
from server.certification import store
from server.errors import Conflict, Forbidden, Invalid, NotFound
from server.notify.service import Notifications
from server.uscc import check_uscc

UNKNOWN = ("", "未知", "unknown")


@dataclass(frozen=True, slots=True)
class Enterprise:
    """What the unified identity platform says about an enterprise account."""

    subject: str
    name: str
    uscc: str


class Certification:
    """Bind, look up, request unbinding, and review requests."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        audit: Audit,
        notify: Notifications,
        users: UserCache,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._notify = notify
        self._users = users  # user_type changes here; every node's copy must go

    async def binding(self, user_id: int) -> dict[str, Any] | None:
        """The user's live binding (enterprise name, USCC, since), or None."""
        async with self._engine.connect() as conn:
            row = await store.fetch_live_binding(conn, user_id=user_id)
        if row is None:
            return None
        return {
            "enterprise_name": row["enterprise_name"],
            "uscc": row["uscc"],
            "bound_at": row["bound_at"].timestamp(),
        }

    async def bind(self, user: User, enterprise: Enterprise, *, ip: str = "") -> None:
        """Bind user to enterprise and make them an enterprise user, in one transaction.

        Raises EnterpriseTaken when another user holds the enterprise (also when two
        users race for it) and already_certified when the user holds another one.
        """
        uscc = check_uscc(enterprise.uscc)
        async with self._engine.begin() as conn:
            mine = await store.fetch_live_binding(conn, user_id=user.id)
            if mine is not None and mine["uscc"] == uscc:
                return
            await store.insert_binding(
                conn,
                user_id=user.id,
                uscc=uscc,
                enterprise_name=enterprise.name[:128],
                subject=enterprise.subject[:128],
            )
            await store.set_user_type(conn, user.id, "enterprise")
        await self._users.changed(user.id)
        self._audit.record(
            "enterprise_bound",
            subject=uscc,
            user_id=user.id,
            ip=ip,
            enterprise=enterprise.name,
        )
        await self._notify.notify(
            user.id,
            "certification",
            "企业认证成功",
            f"您的账号已与“{enterprise.name}”关联绑定。",
            link="/center/",
        )

    async def file_request(
        self, user: User, form: dict[str, str], *, ip: str = ""
    ) -> int:
        """File an unbind request (解绑申请) after checking every field."""
        problems: dict[str, str] = {}
        name = form.get("enterprise_name", "").strip()
        if not 2 <= len(name) <= 128:
            problems["enterprise_name"] = "2 to 128 characters"
        try:
            uscc = check_uscc(form.get("uscc", ""))
        except Invalid as err:
            problems["uscc"] = err.message
            uscc = ""
        bind_account = form.get("bind_account", "").strip()
        if not bind_account or len(bind_account) > 64:
            problems["bind_account"] = "required"
        bind_phone = _phone_or_problem(
            form.get("bind_phone", ""), "bind_phone", problems, required=True
        )
        unbind_account = form.get("unbind_account", "").strip()
        unbind_account = (
            None if unbind_account.lower() in UNKNOWN else unbind_account[:64]
        )
        unbind_phone = _phone_or_problem(
            form.get("unbind_phone", ""), "unbind_phone", problems, required=False
        )
        if problems:
            raise Invalid(details=problems)
        async with self._engine.begin() as conn:
            holder = await store.fetch_live_binding(conn, uscc=uscc)
            if holder is None:
                raise Conflict(
                    "该企业目前没有被任何用户绑定，您可以直接进行企业认证。",
                    code="not_bound",
                )
            if holder["user_id"] == user.id:
                raise Conflict("该企业已绑定在您的账号上。", code="already_yours")
            request_id = await store.insert_request(
                conn,
                requester_id=user.id,
                enterprise_name=name,
                uscc=uscc,
                bind_account=bind_account,
                bind_phone=bind_phone,
                unbind_account=unbind_account,
                unbind_phone=unbind_phone,
                note=form.get("note", "").strip()[:500],
            )
        self._audit.record(
            "unbind_requested", subject=uscc, user_id=user.id, ip=ip, request=request_id
        )
        return request_id

    async def requests(
        self, *, status: str | None = None, requester: int | None = None
    ) -> list[dict[str, Any]]:
        """Unbind requests with the current holder's open orders, oldest first."""
        async with self._engine.connect() as conn:
            rows = await store.fetch_requests(
                conn, status=status, requester_id=requester
            )
        return [_request_json(row) for row in rows]

    async def approve(self, staff: User, request_id: int, *, ip: str = "") -> None:
        """End the holder's binding so the requester may bind; held back by open orders."""
        _require_staff(staff)
        async with self._engine.begin() as conn:
            request = await _pending(conn, request_id)
            holder = await store.fetch_live_binding(conn, uscc=request["uscc"])
            if holder is not None:
                orders = await store.unfinished_orders(conn, holder["user_id"])
                if orders:
                    raise Conflict(
                        f"当前绑定用户有{orders}个未完结的服务券或订单，暂不能解绑。",
                        code="held_back",
                        details={"unfinished_orders": orders},
                    )
                await store.end_binding(conn, holder["id"], by=f"staff:{staff.id}")
                await store.set_user_type(conn, holder["user_id"], "individual")
            if not await store.decide_request(
                conn, request_id, status="approved", reviewer_id=staff.id, reason=None
            ):
                raise Conflict("这条申请已经审核过了。", code="already_reviewed")
        if holder is not None:
            await self._users.changed(holder["user_id"])
        self._audit.record(
            "unbind_approved",
            subject=request["uscc"],
            user_id=staff.id,
            ip=ip,
            request=request_id,
        )
        await self._notify.notify(
            request["requester_id"],
            "review",
            "解绑申请已通过",
            f"“{request['enterprise_name']}”已解除原绑定，您现在可以进行企业认证。",
            link="/center/",
        )
        if holder is not None:
            await self._notify.notify(
                holder["user_id"],
                "review",
                "企业绑定已解除",
                f"经平台审核，您的账号与“{holder['enterprise_name']}”的绑定已解除。",
                link="/center/",
            )

    async def reject(
        self, staff: User, request_id: int, reason: str, *, ip: str = ""
    ) -> None:
        """Refuse a request, with a reason the requester sees."""
        _require_staff(staff)
        reason = reason.strip()
        if not 2 <= len(reason) <= 500:
            raise Invalid("请填写驳回原因。", details={"reason": "2 to 500 characters"})
        async with self._engine.begin() as conn:
            request = await _pending(conn, request_id)
            if not await store.decide_request(
                conn, request_id, status="rejected", reviewer_id=staff.id, reason=reason
            ):
                raise Conflict("这条申请已经审核过了。", code="already_reviewed")
        self._audit.record(
            "unbind_rejected",
            subject=request["uscc"],
            user_id=staff.id,
            ip=ip,
            request=request_id,
        )
        await self._notify.notify(
            request["requester_id"],
            "review",
            "解绑申请未通过",
            f"“{request['enterprise_name']}”的解绑申请未通过：{reason}",
            link="/feedback",
        )


def _require_staff(user: User) -> None:
    if not user.is_staff:
        raise Forbidden("仅平台工作人员可以审核。", code="staff_only")


async def _pending(conn: Any, request_id: int) -> Any:
    request = await store.fetch_request(conn, request_id)
    if request is None:
        raise NotFound("No such request.", code="unknown_request")
    if request["status"] != "pending":
        raise Conflict("这条申请已经审核过了。", code="already_reviewed")
    return request


def _phone_or_problem(
    value: str, field: str, problems: dict[str, str], *, required: bool
) -> str | None:
    value = value.strip()
    if value.lower() in UNKNOWN:
        if required:
            problems[field] = "required"
        return None
    try:
        return normalise_phone(value)
    except Invalid:
        problems[field] = "a mainland mobile number"
        return None


def _request_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "enterprise_name": row["enterprise_name"],
        "uscc": row["uscc"],
        "bind_account": row["bind_account"],
        "bind_phone": row["bind_phone"],
        "unbind_account": row["unbind_account"] or "未知",
        "unbind_phone": row["unbind_phone"] or "未知",
        "note": row["note"],
        "reject_reason": row["reject_reason"],
        "created_at": row["created_at"].timestamp(),
        "holder": row["holder_username"],
        "holder_unfinished_orders": int(row["holder_orders"] or 0),
    }
