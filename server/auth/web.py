"""Who is calling: the browser session cookie and the app's bearer token."""

from __future__ import annotations

from aiohttp import web

from server import jsontext
from server.auth.service import User
from server.auth.sessions import Session
from server.errors import Unauthorized
from server.http import bearer, client_ip, user_agent
from server.keys import AUDIT, AUTH, SETTINGS

COOKIE = "qrl_session"


def set_session_cookie(
    response: web.StreamResponse, request: web.Request, token: str
) -> None:
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


async def start_web_session(
    request: web.Request, response: web.StreamResponse, user: User
) -> None:
    """Rotate to a fresh session: the old cookie's session ends, a new one starts.

    Rotating on every login means a session id planted before login is worthless.
    """
    auth = request.app[AUTH]
    await auth.revoke(request.cookies.get(COOKIE))
    token = await auth.open_session(
        user, "web", ip=client_ip(request), user_agent=user_agent(request)
    )
    set_session_cookie(response, request, token)
    from server.auth.csrf import csrf_token, send_csrf_cookie  # csrf imports us

    csrf_token(request)  # a browser with a session needs a CSRF token
    send_csrf_cookie(request, response)


def user_json(user: User) -> dict[str, object]:
    """What a client may know of its own account."""
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "display_name": user.display_name,
        "phone": user.masked_phone,
        "email": user.email,
        "user_type": user.user_type,
        "avatar": user.avatar_url,
    }


async def app_token_response(
    request: web.Request, user: User, *, method: str, device: str = ""
) -> web.Response:
    """Open an app session for user and answer with its bearer token (every app login
    method ends here), audited with the method used."""
    auth = request.app[AUTH]
    ip = client_ip(request)
    agent = device or user_agent(request)
    token = await auth.open_session(user, "app", ip=ip, user_agent=agent)
    request.app[AUDIT].record(
        "app_login",
        subject=user.username,
        user_id=user.id,
        ip=ip,
        user_agent=agent,
        method=method,
    )
    return jsontext.response(
        {
            "token": token,
            "token_type": "bearer",
            "expires_in": int(auth.settings.app_token_ttl),
            "user": user_json(user),
        }
    )
