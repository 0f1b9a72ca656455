"""Who is calling: the browser session cookie and the app's bearer token."""

from __future__ import annotations

from aiohttp import web

from server.auth.service import Session, User
from server.errors import Unauthorized
from server.http import bearer, client_ip, user_agent
from server.keys import AUTH, SETTINGS

COOKIE = "qrl_session"


def set_session_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    """HttpOnly, SameSite=Lax, and Secure everywhere but development."""
    settings = request.app[SETTINGS]
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.session_ttl),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=not settings.is_development,
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    """Tell the browser to forget the session."""
    response.del_cookie(COOKIE, path="/")


async def current_user(request: web.Request) -> User | None:
    """The user of the browser session, or None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        user, _ = await request.app[AUTH].resolve(token, "web")
    except Unauthorized:
        return None
    return user


async def phone_user(request: web.Request) -> tuple[User, Session]:
    """The user behind an app bearer token, or behind the mobile page's cookie."""
    auth = request.app[AUTH]
    token = bearer(request)
    if token is not None:
        return await auth.resolve(token, "app")
    return await auth.resolve(request.cookies.get(COOKIE), "web")


async def start_web_session(request: web.Request, response: web.StreamResponse, user: User) -> None:
    """Rotate to a fresh session: the old cookie's session ends, a new one starts.

    Rotating on every login means a session id planted before login is worthless.
    """
    auth = request.app[AUTH]
    await auth.revoke(request.cookies.get(COOKIE))
    token = await auth.open_session(
        user, "web", ip=client_ip(request), user_agent=user_agent(request)
    )
    set_session_cookie(response, request, token)
