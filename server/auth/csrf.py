"""CSRF protection for cookie-authenticated writes and every HTML form.

Double-submit: a random token lives in a cookie that only this site's pages can read
(SameSite=Strict), and each form or script echoes it in a field or a header. A page
of another site can make the browser send the cookie's *session* sibling along, but
it can neither read this token nor, being cross-site, get the Strict cookie sent.
The Origin check in the app adds a second, independent barrier.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.auth.web import COOKIE as SESSION_COOKIE
from server.errors import Forbidden
from server.http import check_origin
from server.keys import SETTINGS

CSRF_COOKIE = "qrl_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
CSRF_TOKEN = web.RequestKey("csrf_token", str)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def needs_token(request: web.Request) -> bool:
    """Writes that ride on cookies: forms, and anything sent with the session cookie
    but without an Authorization header (the app's bearer calls carry no ambient
    authority a third-party page could borrow)."""
    if request.method not in UNSAFE:
        return False
    if request.content_type in FORMS:
        return True
    return SESSION_COOKIE in request.cookies and "Authorization" not in request.headers


def csrf_token(request: web.Request) -> str:
    """This browser's token, minted on first use (pages and new sessions ask).

    Minting lazily keeps API calls, which never need one, free of the random
    bytes and the extra cookie.
    """
    token = request.get(CSRF_TOKEN, "")
    if not token:
        token = request[CSRF_TOKEN] = secrets.token_urlsafe(24)
    return token


@web.middleware
def csrf_middleware(
    request: web.Request, handler: Handler
) -> Awaitable[web.StreamResponse]:
    """Refuse cross-site writes: a foreign Origin, or a missing or wrong token.

    It checks before the handler and has nothing to do after, so it hands back the
    handler's awaitable rather than awaiting it: no frame of it stays alive while
    a handler runs (a watching socket's runs for minutes). The token cookie is set
    set by the page or login that mints it (send_csrf_cookie).
    """
    if request.method in UNSAFE:
        check_origin(request, required=False)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(cookie) <= 64:
        request[CSRF_TOKEN] = cookie
    if needs_token(request):
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent and request.content_type in FORMS:
            return _check_form_then(request, handler, cookie)
        _check(sent, cookie)
    return handler(request)


async def _check_form_then(
    request: web.Request, handler: Handler, cookie: str
) -> web.StreamResponse:
    _check(str((await request.post()).get(CSRF_FIELD, "")), cookie)
    return await handler(request)


def _check(sent: str, cookie: str) -> None:
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise Forbidden("页面已过期，请刷新后重试。", code="bad_csrf")


def send_csrf_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """Give the browser the token this request minted (pages and new sessions)."""
    token = request.get(CSRF_TOKEN, "")
    if token and token != request.cookies.get(CSRF_COOKIE, ""):
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path="/",
            samesite="Strict",
            httponly=False,
            secure=not request.app[SETTINGS].is_development,
            max_age=7 * 86400,
        )
