"""Handlers of the declaration workspace: the enterprise's JSON calls and pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from server.auth.service import User
from server.auth.web import current_user, phone_user
from server.declarations.service import CATEGORIES
from server.errors import TooLarge
from server.http import client_ip, parse_body
from server.keys import CERT, DECLARATIONS, ZONE
from server.pages import render
from server.zone.access import int_param

Amount = Decimal | None


class DeclarationFields(BaseModel):
    """Body of PATCH /api/declarations/{id}: any subset of the fields; a draft may be
    incomplete. Amounts are in 万元 with at most two decimals."""

    project_name: str | None = Field(None, max_length=128)
    category: str | None = Field(None, max_length=32)
    total_investment: Amount = Field(None, ge=0, max_digits=14, decimal_places=2)
    amount_requested: Amount = Field(None, ge=0, max_digits=14, decimal_places=2)
    contact_name: str | None = Field(None, max_length=32)
    contact_phone: str | None = Field(None, max_length=20)
    description: str | None = Field(None, max_length=5000)

    @field_validator("total_investment", "amount_requested", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        """An empty form field clears the amount."""
        return None if isinstance(value, str) and not value.strip() else value


class NewDeclaration(DeclarationFields):
    """Body of POST /api/declarations: the program, and optionally first fields."""

    program_id: int = Field(ge=1)


def _declaration_id(request: web.Request) -> int:
    return int_param(request, "declaration_id", "unknown_declaration")


async def read_upload(request: web.Request, limit: int) -> bytes:
    """The raw request body, refused as soon as it passes limit bytes."""
    too_large = TooLarge(
        f"附件不能超过 {limit // (1024 * 1024) or 1} MB。",
        code="attachment_too_large",
        details={"max_bytes": limit},
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def list_mine(request: web.Request) -> web.Response:
    """GET /api/declarations: my enterprise's declarations."""
    user, _ = await phone_user(request)
    return web.json_response({"items": await request.app[DECLARATIONS].mine(user)})


async def create(request: web.Request) -> web.Response:
    """POST /api/declarations: start a draft for an open program."""
    user, _ = await phone_user(request)
    body = await parse_body(request, NewDeclaration)
    fields = body.model_dump(exclude_unset=True, exclude={"program_id"})
    declaration_id = await request.app[DECLARATIONS].create(
        user, body.program_id, fields, ip=client_ip(request)
    )
    return web.json_response(
        {
            "id": declaration_id,
            "status": "draft",
            "next": f"/declare/declarations/{declaration_id}",
        },
        status=201,
    )


async def read(request: web.Request) -> web.Response:
    """GET /api/declarations/{id}: fields, status history and attachments."""
    user, _ = await phone_user(request)
    data = await request.app[DECLARATIONS].get(user, _declaration_id(request))
    return web.json_response(data)


async def save(request: web.Request) -> web.Response:
    """PATCH /api/declarations/{id}: save as draft; only the fields sent change."""
    user, _ = await phone_user(request)
    body = await parse_body(request, DeclarationFields)
    declaration_id = _declaration_id(request)
    await request.app[DECLARATIONS].save(
        user, declaration_id, body.model_dump(exclude_unset=True), ip=client_ip(request)
    )
    return web.json_response({"id": declaration_id, "saved": True})


async def submit(request: web.Request) -> web.Response:
    """POST /api/declarations/{id}/submit: submit once, inside the window."""
    user, _ = await phone_user(request)
    declaration_id = _declaration_id(request)
    await request.app[DECLARATIONS].submit(user, declaration_id, ip=client_ip(request))
    return web.json_response({"id": declaration_id, "status": "submitted"})


async def withdraw(request: web.Request) -> web.Response:
    """POST /api/declarations/{id}/withdraw: back to draft before review starts."""
    user, _ = await phone_user(request)
    declaration_id = _declaration_id(request)
    await request.app[DECLARATIONS].withdraw(
        user, declaration_id, ip=client_ip(request)
    )
    return web.json_response({"id": declaration_id, "status": "draft"})


async def upload(request: web.Request) -> web.Response:
    """POST /api/declarations/{id}/attachments?name=FILE: the file is the raw body."""
    user, _ = await phone_user(request)
    service = request.app[DECLARATIONS]
    declaration_id = _declaration_id(request)
    data = await read_upload(request, service.max_bytes)
    attachment = await service.add_attachment(
        user,
        declaration_id,
        request.query.get("name", "")[:200],
        data,
        ip=client_ip(request),
    )
    return web.json_response(attachment, status=201)


async def download(request: web.Request) -> web.Response:
    """GET /api/declarations/{id}/attachments/{attachment_id}: the checked bytes."""
    user, _ = await phone_user(request)
    attachment_id = int_param(request, "attachment_id", "unknown_attachment")
    info, data = await request.app[DECLARATIONS].attachment(
        user, _declaration_id(request), attachment_id
    )
    disposition = f"attachment; filename*=UTF-8''{quote(info['filename'])}"
    return web.Response(
        body=data,
        content_type=info["content_type"],
        headers={
            "Content-Disposition": disposition,
            "Cache-Control": "private, no-store",
            "Digest": f"sha-256={info['sha256']}",
        },
    )


async def remove(request: web.Request) -> web.Response:
    """DELETE /api/declarations/{id}/attachments/{attachment_id}."""
    user, _ = await phone_user(request)
    attachment_id = int_param(request, "attachment_id", "unknown_attachment")
    await request.app[DECLARATIONS].remove_attachment(
        user, _declaration_id(request), attachment_id, ip=client_ip(request)
    )
    return web.json_response({"deleted": True})


async def home_context(request: web.Request, user: User) -> dict[str, Any]:
    """What the platform's first page shows: 我的申报 and the programs open now."""
    return {
        "binding": await request.app[CERT].binding(user.id),
        "declarations": await request.app[DECLARATIONS].mine(user),
        "open_programs": await request.app[ZONE].programs(state="open"),
    }


async def declaration_page(request: web.Request) -> web.Response:
    """GET /declare/declarations/{id}: fill in, upload, submit; see the history."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound(f"/declare/login?next={quote(request.path, safe='/')}")
    declaration = await request.app[DECLARATIONS].get(user, _declaration_id(request))
    context = {
        "user": user,
        "d": declaration,
        "categories": CATEGORIES,
        "max_mb": request.app[DECLARATIONS].max_bytes / (1024 * 1024),
    }
    return render("declare/declaration.html", request, context)
