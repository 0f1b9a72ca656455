"""Handlers for unbind requests (意见反馈 → 解绑申请) and the staff review queue."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from server.auth.service import User
from server.auth.web import current_user, phone_user
from server.errors import Forbidden, NotFound
from server.http import client_ip, parse_body
from server.keys import CERT
from server.pages import render


class UnbindRequest(BaseModel):
    """Body of POST /api/unbind-requests: the fields the guide lists."""

    enterprise_name: str = Field(max_length=128)
    uscc: str = Field(max_length=40)
    bind_account: str = Field(max_length=64)
    bind_phone: str = Field(max_length=20)
    unbind_account: str = Field("", max_length=64)
    unbind_phone: str = Field("", max_length=20)
    note: str = Field("", max_length=500)


class Rejection(BaseModel):
    """Body of POST /api/staff/unbind-requests/{id}/reject."""

    reason: str = Field(max_length=500)


def _request_id(request: web.Request) -> int:
    raw = request.match_info["request_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound("No such request.", code="unknown_request")
    return int(raw)


async def _staff(request: web.Request) -> User:
    user, _ = await phone_user(request)
    if not user.is_staff:
        raise Forbidden("仅平台工作人员可以审核。", code="staff_only")
    return user


async def file_unbind_request(request: web.Request) -> web.Response:
    """POST /api/unbind-requests: ask staff to end another user's binding."""
    user, _ = await phone_user(request)
    body = await parse_body(request, UnbindRequest)
    request_id = await request.app[CERT].file_request(
        user, body.model_dump(), ip=client_ip(request)
    )
    return web.json_response({"id": request_id, "status": "pending"}, status=201)


async def my_unbind_requests(request: web.Request) -> web.Response:
    """GET /api/unbind-requests: the caller's own requests and their outcomes."""
    user, _ = await phone_user(request)
    items = await request.app[CERT].requests(requester=user.id)
    return web.json_response({"items": items})


async def certification_status(request: web.Request) -> web.Response:
    """GET /api/certification: 已认证 with the enterprise, or 未认证."""
    user, _ = await phone_user(request)
    binding = await request.app[CERT].binding(user.id)
    return web.json_response(
        {
            "certified": binding is not None,
            "binding": binding,
            "user_type": user.user_type,
        }
    )


async def staff_queue(request: web.Request) -> web.Response:
    """GET /api/staff/unbind-requests?status=pending: the review queue."""
    await _staff(request)
    status = request.query.get("status", "pending")
    if status not in ("pending", "approved", "rejected", "all"):
        status = "pending"
    items = await request.app[CERT].requests(status=None if status == "all" else status)
    return web.json_response({"items": items})


async def staff_approve(request: web.Request) -> web.Response:
    """POST /api/staff/unbind-requests/{id}/approve."""
    staff = await _staff(request)
    await request.app[CERT].approve(staff, _request_id(request), ip=client_ip(request))
    return web.json_response({"ok": True, "status": "approved"})


async def staff_reject(request: web.Request) -> web.Response:
    """POST /api/staff/unbind-requests/{id}/reject with a reason."""
    staff = await _staff(request)
    body = await parse_body(request, Rejection)
    await request.app[CERT].reject(
        staff, _request_id(request), body.reason, ip=client_ip(request)
    )
    return web.json_response({"ok": True, "status": "rejected"})


async def feedback_page(request: web.Request) -> web.Response:
    """GET /feedback, /m/feedback: 意见反馈, where unbind requests are filed."""
    user = await current_user(request)
    mobile = request.path.startswith("/m/")
    if user is None:
        raise web.HTTPFound(
            ("/m/login" if mobile else "/declare/login") + f"?next={request.path}"
        )
    mine = await request.app[CERT].requests(requester=user.id)
    context = {
        "user": user,
        "mobile": mobile,
        "mine": mine,
        "prefill": {k: request.query.get(k, "") for k in ("enterprise_name", "uscc")},
    }
    return render("certification/feedback.html", request, context)


async def staff_page(request: web.Request) -> web.Response:
    """GET /staff/: the unbind review queue for platform staff."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound("/declare/login?next=/staff/")
    if not user.is_staff:
        raise Forbidden("仅平台工作人员可以访问。", code="staff_only")
    pending = await request.app[CERT].requests(status="pending")
    done = [r for r in await request.app[CERT].requests() if r["status"] != "pending"]
    return render(
        "certification/staff.html",
        request,
        {"user": user, "pending": pending, "done": done[-20:]},
    )
