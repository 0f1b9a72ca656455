"""The 一证通 stand-in's account pages: register, log in, forgot password, log out.

These are the pages a person sees at 一证通 itself, before and apart from any
relying party: an enterprise registers with its 统一社会信用代码, logs in (the
login page is also what /authorize shows), and resets a forgotten password.
Every form answers with a page; a refused form keeps what was typed, except
passwords, and says what to fix.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from collections.abc import Mapping

from aiohttp import web

from server.standin import identity_pages as pages
from server.standin.identity_core import (
    CONFIG,
    SESSION_COOKIE,
    STORE,
    client_name_of,
    current_session,
    foreign_post,
    hash_password,
    password_problem,
    safe_next,
    same_origin,
    start_session,
    verify_password,
)
from server.standin.identity_store import Duplicate
from server.uscc import BadUscc, check_uscc

log = logging.getLogger(__name__)

RESET_TTL = 600.0
LOGIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
PHONE = re.compile(r"1[3-9]\d{9}|0\d{2,3}-?\d{7,8}")
REGISTER_FIELDS = ("enterprise_name", "uscc", "login_name", "contact_phone")
FORGOT_FIELDS = ("login_name", "uscc", "contact_phone")


def _text(form: Mapping[str, object], name: str, limit: int = 200) -> str:
    """A trimmed, length-capped form value ("" when absent)."""
    return str(form.get(name, "")).strip()[:limit]


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two short strings."""
    return hmac.compare_digest(a.encode(), b.encode())


async def home(request: web.Request) -> web.Response:
    """GET /: what the stand-in is and which clients it knows."""
    config = request.app[CONFIG]
    clients = [
        (c.client_id, "、".join(c.redirect_prefixes)) for c in config.clients.values()
    ]
    return pages.home_page(issuer=config.issuer, clients=clients)


async def login_form(request: web.Request) -> web.Response:
    """GET /login: the login page on its own."""
    next_url = safe_next(request.query.get("next"))
    return pages.login_page(
        next_url=next_url, client_name=client_name_of(request, next_url)
    )


async def login(request: web.Request) -> web.StreamResponse:
    """POST /login: check the password, start a session, continue to next."""
    if not same_origin(request):
        return foreign_post()
    form = await request.post()
    next_url = safe_next(form.get("next"))
    login_name = _text(form, "login_name", 64)
    password = str(form.get("password", ""))[:128]

    store = request.app[STORE]
    enterprise = None
    if login_name:
        enterprise = await store.fetch_enterprise(login_name=login_name)
    hashed = enterprise.password_hash if enterprise else None
    if not await verify_password(hashed, password) or enterprise is None:
        log.warning("stand-in login refused from %s", request.remote)
        return pages.login_page(
            next_url=next_url,
            login_name=login_name,
            error="登录名或密码错误。",
            client_name=client_name_of(request, next_url),
            status=401,
        )

    response = web.HTTPSeeOther(next_url or "/account")
    await start_session(request, response, enterprise)
    await store.sweep(now=time.time())
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout: end the session at the stand-in."""
    if not same_origin(request):
        return foreign_post()
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app[STORE].delete_session(token)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def account(request: web.Request) -> web.StreamResponse:
    """GET /account: the logged-in enterprise, or the login page."""
    session = await current_session(request)
    if session is None:
        raise web.HTTPSeeOther("/login?next=/account")
    enterprise = session[0]
    return pages.account_page(
        enterprise_name=enterprise.enterprise_name,
        uscc=enterprise.uscc,
        login_name=enterprise.login_name,
        contact_phone=enterprise.contact_phone,
    )


async def register_form(request: web.Request) -> web.Response:
    """GET /register: the empty registration form."""
    return pages.register_page(
        values={}, errors={}, next_url=safe_next(request.query.get("next"))
    )


def registration_errors(
    values: dict[str, str], password: str, again: str
) -> dict[str, str]:
    """What is wrong with a registration, field by field; empty when nothing.

    The USCC in values is replaced by its normalised form when it is valid.
    """
    errors = {}
    if not 2 <= len(values["enterprise_name"]) <= 100:
        errors["enterprise_name"] = "请填写企业名称（2至100个字）。"
    try:
        values["uscc"] = check_uscc(values["uscc"])
    except BadUscc as err:
        errors["uscc"] = err.message
    if not LOGIN_NAME.fullmatch(values["login_name"]):
        errors["login_name"] = "登录名须为4至32位，以字母开头，只含字母、数字和下划线。"
    problem = password_problem(password, None)
    if problem:
        errors["password"] = problem
    elif again != password:
        errors["password2"] = "两次输入的密码不一致。"
    if not PHONE.fullmatch(values["contact_phone"]):
        errors["contact_phone"] = "请填写11位手机号或带区号的固定电话。"
    return errors


async def register(request: web.Request) -> web.StreamResponse:
    """POST /register: create the enterprise account and log it in."""
    if not same_origin(request):
        return foreign_post()
    form = await request.post()
    next_url = safe_next(form.get("next"))
    values = {name: _text(form, name) for name in REGISTER_FIELDS}
    password = str(form.get("password", ""))[:128]
    errors = registration_errors(values, password, str(form.get("password2", "")))
    if errors:
        return pages.register_page(
            values=values, errors=errors, next_url=next_url, status=422
        )

    try:
        enterprise = await request.app[STORE].create_enterprise(
            subject=secrets.token_hex(16),
            password_hash=await hash_password(password),
            created_at=time.time(),
            **values,
        )
    except Duplicate as dup:
        message = {
            "login_name": "该登录名已被使用，请换一个。",
            "uscc": "该统一社会信用代码已注册一证通账号；"
            "如忘记密码，请使用“忘记密码”。",
        }[dup.field]
        return pages.register_page(
            values=values, errors={dup.field: message}, next_url=next_url, status=409
        )
    log.info("enterprise %s registered at the stand-in", enterprise.login_name)

    response = web.HTTPSeeOther(next_url or "/account")
    await start_session(request, response, enterprise)
    raise response


async def forgot_form(request: web.Request) -> web.Response:
    """GET /forgot: step 1 of the password reset."""
    return pages.forgot_page(values={}, next_url=safe_next(request.query.get("next")))


async def forgot(request: web.Request) -> web.Response:
    """POST /forgot: login name, USCC and phone must all match; then step 2.

    One message covers every mismatch, so the form does not tell which of the
    three is right.
    """
    if not same_origin(request):
        return foreign_post()
    form = await request.post()
    next_url = safe_next(form.get("next"))
    values = {name: _text(form, name) for name in FORGOT_FIELDS}
    try:
        uscc = check_uscc(values["uscc"])
    except BadUscc as err:
        return pages.forgot_page(
            values=values, error=err.message, next_url=next_url, status=422
        )

    store = request.app[STORE]
    enterprise = await store.fetch_enterprise(login_name=values["login_name"])
    if enterprise is None or not (
        _same(enterprise.uscc, uscc)
        & _same(enterprise.contact_phone, values["contact_phone"])
    ):
        log.warning("stand-in password reset refused from %s", request.remote)
        return pages.forgot_page(
            values=values,
            next_url=next_url,
            status=422,
            error="登录名、统一社会信用代码与联系电话不匹配。",
        )

    token = secrets.token_urlsafe(32)
    await store.insert_reset(token, enterprise.id, expires_at=time.time() + RESET_TTL)
    return pages.reset_page(token=token, next_url=next_url)


async def reset(request: web.Request) -> web.Response:
    """POST /forgot/reset: set the new password; the reset token works once."""
    if not same_origin(request):
        return foreign_post()
    form = await request.post()
    next_url = safe_next(form.get("next"))
    token = str(form.get("token", ""))[:128]
    password = str(form.get("password", ""))[:128]
    problem = password_problem(password, str(form.get("password2", "")))
    if problem:
        return pages.reset_page(
            token=token, error=problem, next_url=next_url, status=422
        )

    store = request.app[STORE]
    enterprise_id = await store.take_reset(token, now=time.time())
    if enterprise_id is None:
        return pages.message_page(
            "链接已失效",
            "重置密码的步骤已超时或已完成，请重新开始。",
            link=pages.with_next("/forgot", next_url),
            link_text="重新找回密码",
            status=410,
        )
    await store.update_password(enterprise_id, await hash_password(password))
    log.info("stand-in password reset for enterprise %d", enterprise_id)
    return pages.message_page(
        "密码已重置",
        "新密码已生效，请使用新密码登录。",
        link=pages.with_next("/login", next_url),
        link_text="去登录",
    )


def setup(app: web.Application) -> None:
    """Add the account pages to the stand-in."""
    app.router.add_get("/", home)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/account", account)
    app.router.add_get("/register", register_form)
    app.router.add_post("/register", register)
    app.router.add_get("/forgot", forgot_form)
    app.router.add_post("/forgot", forgot)
    app.router.add_post("/forgot/reset", reset)
