"""Account pages: register, forgot password, the personal center, the agreements,
and the development outbox. Their forms post to the JSON API with account.js."""

from __future__ import annotations

from aiohttp import web

from server.auth.web import current_user
from server.errors import NotFound
from server.keys import CERT, DELIVERY, SETTINGS
from server.pages import render
from server.portal.views import safe_next
from server.settings import Settings

TERMS = (
    "本协议是您与北京市中小企业公共服务平台之间关于使用平台服务的约定。",
    "您应妥善保管账号和密码，因您保管不善造成的损失由您自行承担。",
    "您不得利用平台从事违法违规活动，平台有权对违规账号采取限制措施。",
)
PRIVACY = (
    "我们仅收集提供服务所必需的信息：手机号、用户名及您主动填写的资料。",
    "登录记录（IP 地址、设备信息）用于保障账号安全，保存期限不超过法律要求。",
    "未经您同意，我们不会向第三方提供您的个人信息，法律法规另有规定的除外。",
)


def identity_register_url(settings: Settings) -> str:
    """Where people without a 一证通 account register one."""
    issuer = settings.identity_issuer.rstrip("/")
    return f"{issuer}/register" if issuer else ""


def _is_mobile(request: web.Request) -> bool:
    return request.path.startswith("/m/")


def _login_url(request: web.Request) -> str:
    return "/m/login" if _is_mobile(request) else "/declare/login?tab=password"


async def register_page(request: web.Request) -> web.Response:
    """GET /register, /m/register: phone, code, username, password, type, consent."""
    mobile = _is_mobile(request)
    context = {
        "mobile": mobile,
        "next": safe_next(request.query.get("next"), "/m/" if mobile else "/center/"),
        "login_url": _login_url(request),
    }
    return render("account/register.html", request, context)


async def forgot_page(request: web.Request) -> web.Response:
    """GET /forgot, /m/forgot: reset the password with an SMS code."""
    context = {"mobile": _is_mobile(request), "login_url": _login_url(request)}
    return render("account/forgot.html", request, context)


async def center_page(request: web.Request) -> web.Response:
    """GET /center/, /m/center: 个人中心."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound(f"{_login_url(request).split('?')[0]}?next={request.path}")
    context = {
        "user": user,
        "mobile": _is_mobile(request),
        "binding": await request.app[CERT].binding(user.id),
        "identity_register_url": identity_register_url(request.app[SETTINGS]),
        "cert_error": request.query.get("cert_error", "")[:200],
        "cert_enterprise_name": request.query.get("enterprise_name", "")[:128],
        "cert_uscc": request.query.get("uscc", "")[:40],
    }
    return render("account/center.html", request, context)


async def terms_page(request: web.Request) -> web.Response:
    """GET /terms: the user agreement, at its current version."""
    context = {
        "title": "用户协议",
        "version": request.app[SETTINGS].terms_version,
        "paragraphs": TERMS,
    }
    return render("account/agreement.html", request, context)


async def privacy_page(request: web.Request) -> web.Response:
    """GET /privacy: the privacy policy, at its current version."""
    context = {
        "title": "隐私政策",
        "version": request.app[SETTINGS].privacy_version,
        "paragraphs": PRIVACY,
    }
    return render("account/agreement.html", request, context)


async def outbox_page(request: web.Request) -> web.Response:
    """GET /dev/outbox: codes and notices sent in development; absent in production."""
    if not request.app[SETTINGS].is_development:
        raise NotFound()
    messages = await request.app[DELIVERY].outbox.everything()
    return render("dev/outbox.html", request, {"messages": messages})


def setup(app: web.Application) -> None:
    """Register the account pages."""
    add = app.router.add_route
    add("GET", "/register", register_page, name="register")
    add("GET", "/m/register", register_page, name="mobile_register")
    add("GET", "/forgot", forgot_page, name="forgot")
    add("GET", "/m/forgot", forgot_page, name="mobile_forgot")
    add("GET", "/center/", center_page, name="center")
    add("GET", "/m/center", center_page, name="mobile_center")
    add("GET", "/terms", terms_page, name="terms")
    add("GET", "/privacy", privacy_page, name="privacy")
    add("GET", "/dev/outbox", outbox_page, name="dev_outbox")
