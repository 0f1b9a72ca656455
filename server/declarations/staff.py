"""Staff handlers of declarations: the review queue and its four decisions."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from server.declarations.service import STATUS_TEXT
from server.http import client_ip, parse_body
from server.keys import DECLARATIONS
from server.pages import render
from server.zone.access import api_staff, int_param, page_staff


class ReviewComment(BaseModel):
    """Body of POST /api/staff/declarations/{id}/{action}: the comment.

    Required to return or reject; optional to accept or approve.
    """

    comment: str = Field("", max_length=1000)


async def queue(request: web.Request) -> web.Response:
    """GET /api/staff/declarations?status=: declarations to review."""
    staff = await api_staff(request)
    items = await request.app[DECLARATIONS].queue(staff, request.query.get("status"))
    return web.json_response({"items": items})


async def decide(request: web.Request) -> web.Response:
    """POST /api/staff/declarations/{id}/accept|return|approve|reject."""
    staff = await api_staff(request)
    declaration_id = int_param(request, "declaration_id", "unknown_declaration")
    body = await parse_body(request, ReviewComment)
    status = await request.app[DECLARATIONS].review(
        staff,
        declaration_id,
        request.match_info["action"],
        body.comment,
        ip=client_ip(request),
    )
    return web.json_response({"id": declaration_id, "status": status})


async def review_page(request: web.Request) -> web.Response:
    """GET /staff/declarations: the review queue for platform staff."""
    user = await page_staff(request)
    status = request.query.get("status", "")
    items = await request.app[DECLARATIONS].queue(user, status or None)
    return render(
        "declare/staff.html",
        request,
        {"user": user, "items": items, "status": status, "statuses": STATUS_TEXT},
    )
