"""The pages people see: the declaration platform's login and first page, and the
mobile pages a phone browser uses to log in and confirm a scan."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.web import current_user, start_web_session
from server.declarations.views import home_context
from server.errors import Locked, Unauthorized
from server.http import client_ip, user_agent
from server.keys import AUDIT, AUTH, LIMITS, QR, SETTINGS
from server.pages import render


def safe_next(value: str | None, default: str) -> str:
    """Only paths on this site, so a login link cannot send users elsewhere."""
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
    ):
        return value
    return default


def _page_settings(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    return {
        "qr_lifetime": settings.qr_lifetime,
        "max_rotations": settings.qr_max_rotations,
        "app_download_url": settings.app_download_url,
    }


async def index(request: web.Request) -> web.Response:
    """GET /: the platform's first page."""
    raise web.HTTPFound("/declare/")


async def declare_login_page(request: web.Request) -> web.Response:
    """GET /declare/login: QR login by default, password login beside it."""
    context = {
        **_page_settings(request),
        "user": await current_user(request),
        "tab": request.query.get("tab", "qr"),
        "next": safe_next(request.query.get("next"), "/declare/"),
    }
    return render("declare/login.html", request, context)


async def _password_login(
    request: web.Request, *, template: str, default_next: str, extra: dict[str, Any]
) -> web.Response:
    """Shared by the PC and mobile forms: check, rotate the session, redirect."""
    form = await request.post()
    account = str(form.get("account", ""))[:64]
    password = str(form.get("password", ""))[:128]
    next_url = safe_next(str(form.get("next", "")), default_next)
    ip = client_ip(request)
    try:
        await request.app[LIMITS].hit("app_login", ip)
        if not account or not password:
            raise Unauthorized("请输入账号和密码。", code="missing_credentials")
        user = await request.app[AUTH].authenticate(account, password, ip=ip)
    except (Unauthorized, Locked) as err:
        context = {
            **extra,
            "tab": "password",
            "error": err.message,
            "account": account,
            "next": next_url,
            "user": None,
        }
        return render(template, request, context, status=err.status)
    response = web.HTTPSeeOther(next_url)
    await start_web_session(request, response, user)
    request.app[AUDIT].record(
        "login",
        subject=user.username,
        user_id=user.id,
        ip=ip,
        user_agent=user_agent(request),
        method="password",
    )
    raise response


async def declare_login(request: web.Request) -> web.Response:
    """POST /declare/login: the 账号密码登录 form."""
    return await _password_login(
        request,
        template="declare/login.html",
        default_next="/declare/",
        extra=_page_settings(request),
    )


async def declare_home(request: web.Request) -> web.Response:
    """GET /declare/: the declaration platform's first page, for a logged-in user."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound("/declare/login")
    context = {"user": user, **await home_context(request, user)}
    return render("declare/home.html", request, context)


async def mobile_login_page(request: web.Request) -> web.Response:
    """GET /m/login: the phone browser's login page."""
    context = {
        "next": safe_next(request.query.get("next"), "/m/"),
        "user": None,
        "tab": request.query.get("tab", "password"),
    }
    return render("mobile/login.html", request, context)


async def mobile_login(request: web.Request) -> web.Response:
    """POST /m/login: log the phone browser in."""
    return await _password_login(
        request, template="mobile/login.html", default_next="/m/", extra={}
    )


async def mobile_home(request: web.Request) -> web.Response:
    """GET /m/: 我的, the phone's own page."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound("/m/login")
    return render("mobile/home.html", request, {"user": user})


async def mobile_confirm(request: web.Request) -> web.Response:
    """GET /qr/s/{id}: what a phone camera opens; scanning happens from the page."""
    qr_id = request.match_info["qr_id"]
    await request.app[QR].load(qr_id)
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound(f"/m/login?next=/qr/s/{qr_id}")
    context = {"user": user, "qr_id": qr_id}
    response = render("mobile/confirm.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response
