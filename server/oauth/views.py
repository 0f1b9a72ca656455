"""Pages of third-party login: off to the provider, back again, and the
first-time page that links the provider account or registers a new account."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from aiohttp import web

from server.auth.service import User
from server.auth.web import start_web_session
from server.errors import Conflict, Invalid, Locked, Unauthorized
from server.http import client_ip, user_agent
from server.keys import AUDIT, AUTH, LIMITS, SETTINGS
from server.oauth.errors import IdentityTaken
from server.oauth.keys import OAUTH
from server.oauth.service import Pending
from server.pages import render
from server.portal.views import safe_next

log = logging.getLogger(__name__)

FLOW_COOKIE = "qrl_oauth"
LINK_COOKIE = "qrl_oauth_link"
COOKIE_PATH = "/oauth/"

# What the register form says about a field the account rules refuse without a
# message of their own (code "invalid"), and about taken names.
FIELD_HELP = {
    "username": "用户名需为3-32位字母、数字或下划线，并以字母开头。",
    "password": "密码长度须为8到128个字符。",
    "phone": "请输入中国大陆手机号，或留空。",
}
TAKEN = {
    "username_taken": "该用户名已被使用，请换一个。",
    "phone_taken": "该手机号已注册，请用上方表单关联已有账号。",
}


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str
) -> None:
    """A short-lived HttpOnly cookie seen only under /oauth/."""
    settings = request.app[SETTINGS]
    response.set_cookie(
        name,
        value,
        max_age=int(settings.oauth_state_ttl),
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=not settings.is_development,
    )


async def start(request: web.Request) -> web.Response:
    """GET /oauth/{provider}/start?next=: bind a new login to this browser, go."""
    await request.app[LIMITS].hit("app_login", client_ip(request))
    next_url = safe_next(request.query.get("next"), "/declare/")
    binding, url = await request.app[OAUTH].begin(
        request.match_info["provider"], next_url=next_url
    )
    response = web.HTTPFound(url)
    _set_cookie(request, response, FLOW_COOKIE, binding)
    raise response


async def callback(request: web.Request) -> web.Response:
    """GET /oauth/{provider}/callback: the provider sends the browser back here.

    A known provider account logs straight in; a new one goes to the link page.
    """
    service = request.app[OAUTH]
    query = request.query
    profile, next_url = await service.finish(
        request.match_info["provider"],
        binding=request.cookies.get(FLOW_COOKIE),
        state=query.get("state", "")[:256],
        code=query.get("code", "")[:512],
        error=query.get("error", "")[:64],
    )

    user = await service.find_user(profile)
    if user is None:
        link_token = await service.hold(profile, next_url=next_url)
        response = web.HTTPFound(request.app.router["oauth_link"].url_for().path)
        _set_cookie(request, response, LINK_COOKIE, link_token)
        response.del_cookie(FLOW_COOKIE, path=COOKIE_PATH)
        raise response

    response = web.HTTPFound(next_url)
    response.del_cookie(FLOW_COOKIE, path=COOKIE_PATH)
    await _log_in(request, response, user, profile.provider)
    raise response


async def link_page(request: web.Request) -> web.Response:
    """GET /oauth/link: link the provider account to an account, or register one."""
    pending = await request.app[OAUTH].pending(request.cookies.get(LINK_COOKIE))
    return _render(request, pending)


async def link(request: web.Request) -> web.Response:
    """POST /oauth/link: prove an existing account's password, link, log in."""
    form = await request.post()
    account = str(form.get("account", ""))[:64]
    password = str(form.get("password", ""))[:128]
    service = request.app[OAUTH]
    link_token = request.cookies.get(LINK_COOKIE)
    pending = await service.pending(link_token)

    ip = client_ip(request)
    await request.app[LIMITS].hit("app_login", ip)
    try:
        if not account or not password:
            raise Unauthorized(code="missing_credentials")
        user = await request.app[AUTH].authenticate(account, password, ip=ip)
    except (Unauthorized, Locked) as err:
        error = err.message if isinstance(err, Locked) else "账号或密码错误。"
        return _render(
            request,
            pending,
            form="link",
            error=error,
            values={"account": account},
            status=err.status,
        )
    assert link_token is not None  # pending() refuses a missing token
    await service.link(link_token, user)
    return await _linked(request, user, pending)


async def register(request: web.Request) -> web.Response:
    """POST /oauth/register: a new account (username, password, optional phone).

    Kept minimal on purpose: the phone is not verified here. SMS-code
    registration is being built separately and will replace this form's phone.
    """
    form = await request.post()
    username = str(form.get("username", ""))[:32]
    password = str(form.get("password", ""))[:128]
    phone = str(form.get("phone", "")).strip()[:20]
    service = request.app[OAUTH]
    link_token = request.cookies.get(LINK_COOKIE)
    pending = await service.pending(link_token)

    ip = client_ip(request)
    await request.app[LIMITS].hit("app_login", ip)
    assert link_token is not None  # pending() refuses a missing token
    values = {"username": username, "phone": phone}
    if form.get("agree") != "on":
        return _render(
            request,
            pending,
            form="register",
            values=values,
            status=422,
            error="请阅读并同意用户协议和隐私政策。",
        )
    settings = request.app[SETTINGS]
    consents = {"terms": settings.terms_version, "privacy": settings.privacy_version}
    try:
        user, _ = await service.register(
            link_token,
            username=username,
            password=password,
            phone=phone or None,
            consents=consents,
            ip=ip,
        )
    except IdentityTaken:
        raise  # the provider account is gone for good: the error page says so
    except Invalid as err:
        fields = err.details if isinstance(err.details, dict) else {}
        error = " ".join(FIELD_HELP.get(f, "") for f in fields) or "请检查填写的内容。"
        if err.code != "invalid":  # a rule with its own message, e.g. weak_password
            error = err.message
        return _render(
            request, pending, form="register", error=error, values=values, status=422
        )
    except Conflict as err:
        error = TAKEN.get(err.code, "用户名或手机号已被使用。")
        return _render(
            request, pending, form="register", error=error, values=values, status=409
        )
    return await _linked(request, user, pending)


async def _linked(request: web.Request, user: User, pending: Pending) -> NoReturn:
    """After a link or a registration: audit, log the browser in, go on."""
    request.app[AUDIT].record(
        "identity_linked",
        subject=user.username,
        user_id=user.id,
        ip=client_ip(request),
        provider=pending.provider,
    )
    response = web.HTTPSeeOther(pending.next_url or "/declare/")
    response.del_cookie(LINK_COOKIE, path=COOKIE_PATH)
    await _log_in(request, response, user, pending.provider)
    raise response


async def _log_in(
    request: web.Request, response: web.StreamResponse, user: User, provider: str
) -> None:
    """Start the browser session and record the login."""
    await start_web_session(request, response, user)
    request.app[AUDIT].record(
        "login",
        subject=user.username,
        user_id=user.id,
        ip=client_ip(request),
        user_agent=user_agent(request),
        method=f"oauth:{provider}",
    )
    log.info("oauth login of user %d through %s", user.id, provider)


def _render(
    request: web.Request,
    pending: Pending,
    *,
    form: str = "",
    error: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    """The link page, with the failed form's error and values when there is one."""
    provider = request.app[OAUTH].providers.get(pending.provider)
    context: dict[str, Any] = {
        "label": provider.label if provider else pending.provider,
        "nickname": pending.nickname,
        "form": form,
        "error": error,
        "values": values or {},
    }
    response = render("oauth/link.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response
