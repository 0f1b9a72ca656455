"""JSON handlers for accounts: captchas, codes, registration, code login, password
reset and the personal center. Pages and the app call the same handlers."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from server.auth.service import User
from server.auth.sessions import Session
from server.auth.web import (
    COOKIE,
    app_token_response,
    phone_user,
    start_web_session,
    user_json,
)
from server.errors import Invalid, NotFound
from server.http import client_ip, parse_body, user_agent
from server.keys import AUDIT, AUTH, LIMITS


class CodeRequest(BaseModel):
    """Body of POST /api/codes: the captcha answer buys one code."""

    purpose: Literal["login", "register", "reset", "change_phone"]
    destination: str = Field(min_length=3, max_length=254)
    captcha_id: str = Field(min_length=1, max_length=64)
    captcha_answer: str = Field(min_length=1, max_length=16)


class Register(BaseModel):
    """Body of the registration calls."""

    phone: str = Field(min_length=11, max_length=20)
    code: str = Field(min_length=4, max_length=12)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    user_type: Literal["individual", "enterprise"] = "individual"
    agree: bool


class CodeLogin(BaseModel):
    """Body of the code login calls."""

    destination: str = Field(min_length=3, max_length=254)
    code: str = Field(min_length=4, max_length=12)


class Reset(BaseModel):
    """Body of POST /api/auth/reset."""

    phone: str = Field(min_length=11, max_length=20)
    code: str = Field(min_length=4, max_length=12)
    password: str = Field(min_length=1, max_length=256)


class Profile(BaseModel):
    """Body of PATCH /api/me."""

    display_name: str = Field(max_length=64)


class ChangePassword(BaseModel):
    """Body of POST /api/me/password."""

    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class ChangePhone(BaseModel):
    """Body of POST /api/me/phone."""

    password: str = Field(min_length=1, max_length=256)
    phone: str = Field(min_length=11, max_length=20)
    code: str = Field(min_length=4, max_length=12)


def session_json(session: Session, current: str) -> dict[str, object]:
    """One session or app token as the personal center lists it."""
    return {
        "id": session.public_id,
        "kind": session.kind,
        "created_at": session.created_at,
        "ip": session.ip,
        "user_agent": session.user_agent,
        "current": session.token_hash == current,
    }


# -- before logging in ------------------------------------------------------------


async def new_captcha(request: web.Request) -> web.Response:
    """POST /api/captcha: a fresh picture code."""
    captcha_id = await request.app[AUTH].codes.new_captcha()
    return web.json_response(
        {
            "id": captcha_id,
            "image_url": f"/api/captcha/{captcha_id}/image",
            "expires_in": request.app[AUTH].settings.captcha_ttl,
        },
        status=201,
    )


async def captcha_image(request: web.Request) -> web.Response:
    """GET /api/captcha/{id}/image: the picture, as PNG."""
    image = await request.app[AUTH].codes.captcha_image(
        request.match_info["captcha_id"]
    )
    if image is None:
        raise NotFound("The picture code has expired.", code="captcha_expired")
    return web.Response(
        body=image, content_type="image/png", headers={"Cache-Control": "no-store"}
    )


async def send_code(request: web.Request) -> web.Response:
    """POST /api/codes: solve the captcha, get a code by SMS or email."""
    body = await parse_body(request, CodeRequest)
    auth = request.app[AUTH]
    destination = auth.normalise_destination(body.destination)
    await auth.codes.solve_captcha(body.captcha_id, body.captcha_answer)
    if body.purpose == "change_phone":
        await phone_user(request)  # only a logged-in user moves a phone
    sent = await auth.send_code(body.purpose, destination, ip=client_ip(request))
    return web.json_response({"sent": True, **sent})


async def username_available(request: web.Request) -> web.Response:
    """GET /api/auth/username-available?username=: the form's live check."""
    username = request.query.get("username", "")[:64]
    taken = await request.app[AUTH].username_taken(username)
    return web.json_response({"username": username, "available": not taken})


async def _registered(request: web.Request) -> User:
    body = await parse_body(request, Register)
    if not body.agree:
        raise Invalid(
            "请阅读并同意用户协议和隐私政策。",
            code="consent_required",
            details={"agree": "required"},
        )
    await request.app[LIMITS].hit("app_login", client_ip(request))
    return await request.app[AUTH].register(
        phone=body.phone,
        code=body.code,
        username=body.username,
        password=body.password,
        user_type=body.user_type,
        ip=client_ip(request),
    )


async def _logged_in_page(
    request: web.Request, user: User, method: str
) -> web.Response:
    response = web.json_response(
        {"ok": True, "user": user_json(user), "next": "/center/"}
    )
    await start_web_session(request, response, user)
    request.app[AUDIT].record(
        "login",
        subject=user.username,
        user_id=user.id,
        ip=client_ip(request),
        user_agent=user_agent(request),
        method=method,
    )
    return response


async def _logged_in_app(request: web.Request, user: User, method: str) -> web.Response:
    return await app_token_response(request, user, method=method)


async def register(request: web.Request) -> web.Response:
    """POST /api/auth/register: a new account, logged in on this browser."""
    return await _logged_in_page(request, await _registered(request), "register")


async def app_register(request: web.Request) -> web.Response:
    """POST /api/app/register: a new account and an app token."""
    return await _logged_in_app(request, await _registered(request), "register")


async def _code_user(request: web.Request) -> User:
    body = await parse_body(request, CodeLogin)
    await request.app[LIMITS].hit("app_login", client_ip(request))
    return await request.app[AUTH].code_login(body.destination, body.code)


async def code_login(request: web.Request) -> web.Response:
    """POST /api/auth/code-login: log this browser in with a code."""
    return await _logged_in_page(request, await _code_user(request), "code")


async def app_code_login(request: web.Request) -> web.Response:
    """POST /api/app/code-login: an app token for a code."""
    return await _logged_in_app(request, await _code_user(request), "code")


async def reset_password(request: web.Request) -> web.Response:
    """POST /api/auth/reset: a new password after a reset code; nobody is logged in."""
    body = await parse_body(request, Reset)
    await request.app[LIMITS].hit("app_login", client_ip(request))
    await request.app[AUTH].reset_password(
        body.phone, body.code, body.password, ip=client_ip(request)
    )
    return web.json_response({"ok": True, "next": "/declare/login?tab=password"})


# -- the personal center (browser cookie or app token) ------------------------------


async def me(request: web.Request) -> web.Response:
    """GET /api/me: the account and the session asking."""
    user, session = await phone_user(request)
    return web.json_response(
        {**user_json(user), "session": session_json(session, session.token_hash)}
    )


async def update_me(request: web.Request) -> web.Response:
    """PATCH /api/me: change the display name."""
    user, _ = await phone_user(request)
    body = await parse_body(request, Profile)
    user = await request.app[AUTH].update_profile(user, display_name=body.display_name)
    return web.json_response(user_json(user))


async def change_password(request: web.Request) -> web.Response:
    """POST /api/me/password: old and new password; every other session ends."""
    user, session = await phone_user(request)
    body = await parse_body(request, ChangePassword)
    await request.app[AUTH].change_password(
        user,
        body.old_password,
        body.new_password,
        keep=session.token_hash,
        ip=client_ip(request),
    )
    return web.json_response({"ok": True})


async def change_phone(request: web.Request) -> web.Response:
    """POST /api/me/phone: the password again, and a code sent to the new phone."""
    user, _ = await phone_user(request)
    body = await parse_body(request, ChangePhone)
    user = await request.app[AUTH].change_phone(
        user,
        password=body.password,
        new_phone=body.phone,
        code=body.code,
        ip=client_ip(request),
    )
    return web.json_response(user_json(user))


async def list_sessions(request: web.Request) -> web.Response:
    """GET /api/me/sessions: browser sessions and app devices, newest first."""
    user, session = await phone_user(request)
    sessions = await request.app[AUTH].sessions(user)
    return web.json_response(
        {"sessions": [session_json(s, session.token_hash) for s in sessions]}
    )


async def revoke_session(request: web.Request) -> web.Response:
    """DELETE /api/me/sessions/{id}: end one session or app token."""
    user, _ = await phone_user(request)
    await request.app[AUTH].revoke_by_id(user, request.match_info["session_id"][:32])
    return web.json_response({"ok": True})


async def logout_everywhere(request: web.Request) -> web.Response:
    """POST /api/me/logout-all: end every session and app token, this one too."""
    user, _ = await phone_user(request)
    ended = await request.app[AUTH].revoke_all(user)
    request.app[AUDIT].record(
        "logout_everywhere",
        subject=user.username,
        user_id=user.id,
        ip=client_ip(request),
        sessions_ended=ended,
    )
    response = web.json_response({"ok": True, "ended": ended})
    if COOKIE in request.cookies:
        response.del_cookie(COOKIE, path="/")
    return response
