"""Handlers for logging in and out, in the app API and on the pages."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from server.auth.web import (
    COOKIE,
    app_token_response,
    clear_session_cookie,
    phone_user,
)
from server.errors import Unauthorized
from server.http import bearer, client_ip, parse_body
from server.keys import AUDIT, AUTH, LIMITS


class AppLogin(BaseModel):
    """Body of POST /api/app/login."""

    account: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)
    device: str = Field("", max_length=64)


async def app_login(request: web.Request) -> web.Response:
    """POST /api/app/login: a revocable bearer token for the phone app."""
    ip = client_ip(request)
    await request.app[LIMITS].hit("app_login", ip)
    body = await parse_body(request, AppLogin)
    user = await request.app[AUTH].authenticate(body.account, body.password, ip=ip)
    return await app_token_response(
        request, user, method="password", device=body.device
    )


async def app_logout(request: web.Request) -> web.Response:
    """POST /api/app/logout: revoke this bearer token."""
    user, _ = await phone_user(request)
    await request.app[AUTH].revoke(bearer(request))
    request.app[AUDIT].record(
        "app_logout", subject=user.username, user_id=user.id, ip=client_ip(request)
    )
    return web.json_response({"ok": True})


async def me(request: web.Request) -> web.Response:
    """GET /api/app/me: who the token belongs to."""
    user, session = await phone_user(request)
    return web.json_response(
        {
            "id": user.id,
            "username": user.username,
            "name": user.name,
            "phone": user.masked_phone,
            "user_type": user.user_type,
            "avatar": user.avatar_url,
            "session": {"kind": session.kind, "created_at": session.created_at},
        }
    )


async def logout(request: web.Request) -> web.Response:
    """POST /logout: end the browser session and go back to the login page."""
    auth = request.app[AUTH]
    token = request.cookies.get(COOKIE)
    if token:
        try:
            user, _ = await auth.resolve(token, "web")
            request.app[AUDIT].record(
                "logout", subject=user.username, user_id=user.id, ip=client_ip(request)
            )
        except Unauthorized:  # an ended session logs out all the same
            pass
        await auth.revoke(token)
    response = web.HTTPSeeOther(request.query.get("next", "/declare/login"))
    if not response.location.startswith("/") or response.location.startswith("//"):
        response = web.HTTPSeeOther("/declare/login")
    clear_session_cookie(response)
    raise response
