"""The certification round trip: from 未认证 to 一证通's login and back to 已认证.

The browser (or the app's web view) is sent to the unified identity platform with
a fresh state, nonce and PKCE verifier that stay in the broker; the state is also
tied to this browser by a short-lived cookie, so a callback opened in another
browser binds nothing. The callback trades the code for the enterprise and binds.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlencode

from aiohttp import web

from server.auth.web import current_user, phone_user
from server.certification.oidc import new_auth_request
from server.certification.service import Enterprise
from server.certification.store import EnterpriseTaken
from server.errors import Conflict, Unauthorized
from server.http import client_ip
from server.keys import AUTH, BROKER, CERT, IDENTITY, SETTINGS
from server.pages import render

COOKIE = "qrl_cert"
TTL = 600.0


def _callback_url(request: web.Request) -> str:
    return f"{request.app[SETTINGS].base_url}/certification/callback"


async def _begin(request: web.Request, user_id: int, browser: str | None) -> str:
    """Store the request's secrets and return the provider's login URL."""
    auth = new_auth_request()
    record = {
        "user_id": user_id,
        "nonce": auth.nonce,
        "verifier": auth.code_verifier,
        "browser": browser,
    }
    await request.app[BROKER].put(f"cert:{auth.state}", json.dumps(record), TTL)
    return await request.app[IDENTITY].authorization_url(
        state=auth.state,
        nonce=auth.nonce,
        code_challenge=auth.code_challenge,
        redirect_uri=_callback_url(request),
    )


async def start(request: web.Request) -> web.Response:
    """GET /certification/start: off to 一证通 to log in as the enterprise."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound("/declare/login?tab=password&next=/center/")
    browser = secrets.token_urlsafe(24)
    response = web.HTTPFound(await _begin(request, user.id, browser))
    response.set_cookie(
        COOKIE,
        browser,
        max_age=int(TTL),
        httponly=True,
        samesite="Lax",
        path="/certification/",
        secure=not request.app[SETTINGS].is_development,
    )
    raise response


async def app_start(request: web.Request) -> web.Response:
    """POST /api/app/certification/start: the URL the app opens in its web view."""
    user, _ = await phone_user(request)
    return web.json_response({"authorize_url": await _begin(request, user.id, None)})


def _back_to_center(
    message: str, enterprise: Enterprise | None = None
) -> web.HTTPFound:
    query = {"cert_error": message}
    if enterprise is not None:
        query |= {"enterprise_name": enterprise.name, "uscc": enterprise.uscc}
    return web.HTTPFound("/center/?" + urlencode(query))


async def callback(request: web.Request) -> web.Response:
    """GET /certification/callback: bind the enterprise 一证通 vouched for."""
    state = request.query.get("state", "")[:128]
    raw = await request.app[BROKER].take(f"cert:{state}") if state else None
    if raw is None:
        raise Unauthorized("认证请求已过期，请重新发起企业认证。", code="bad_state")
    record = json.loads(raw)
    in_app = record["browser"] is None
    if not in_app and not secrets.compare_digest(
        request.cookies.get(COOKIE, ""), record["browser"]
    ):
        raise Unauthorized("请在发起认证的浏览器中完成认证。", code="bad_state")

    user = await request.app[AUTH].get_user(record["user_id"])
    if user is None:
        raise Unauthorized("账号已不存在。", code="session_ended")
    if "error" in request.query or "code" not in request.query:
        return _finish(request, in_app, "您取消了一证通登录，企业认证未完成。")

    claims = await request.app[IDENTITY].exchange(
        code=request.query["code"][:512],
        code_verifier=record["verifier"],
        redirect_uri=_callback_url(request),
        nonce=record["nonce"],
    )
    enterprise = Enterprise(
        subject=claims.subject, name=claims.enterprise_name, uscc=claims.uscc
    )
    try:
        await request.app[CERT].bind(user, enterprise, ip=client_ip(request))
    except (EnterpriseTaken, Conflict) as err:
        return _finish(request, in_app, err.message, enterprise)
    return _finish(request, in_app, None, enterprise)


def _finish(
    request: web.Request,
    in_app: bool,
    error: str | None,
    enterprise: Enterprise | None = None,
) -> web.Response:
    """Back to the personal center, or, in the app's web view, a result page."""
    if in_app:
        context = {"error": error, "enterprise": enterprise}
        return render(
            "certification/result.html", request, context, status=409 if error else 200
        )
    if error:
        raise _back_to_center(error, enterprise)
    response = web.HTTPFound("/center/")
    response.del_cookie(COOKIE, path="/certification/")
    raise response
