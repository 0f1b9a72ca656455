"""Handlers of the portal home, the zone's pages, the app home and short links."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.web import current_user, phone_user
from server.keys import CERT, SETTINGS, ZONE
from server.pages import render
from server.zone.access import (
    CERTIFY_URL,
    NOT_CERTIFIED,
    api_entrant,
    int_param,
    page_entrant,
)
from server.zone.service import PHASES

LOGIN_OPTIONS = (
    (
        "qr",
        "App快捷登录",
        (
            "打开北京通企服版App并登录，点击首页顶部的扫一扫，对准登录页面的"
            "二维码扫码，在手机上点击“确认登录”；电脑上的登录按钮会切换为“进入”。"
        ),
    ),
    (
        "code",
        "验证码登录",
        (
            "填写入驻平台时录入的手机号或邮箱和图形验证码，点击“获取验证码”，"
            "把收到的验证码填写到登录界面后登录。"
        ),
    ),
    (
        "password",
        "账号密码登录",
        "填写用户名和密码后登录。连续输错超过5次，账号会被锁定，默认10分钟后解锁。",
    ),
)


def _filters(request: web.Request) -> dict[str, str]:
    query = request.query
    state = query.get("state", "")
    return {
        "text": query.get("q", "")[:64],
        "department": query.get("department", "")[:64],
        "state": state if state in PHASES else "",
    }


async def portal_home(request: web.Request) -> web.Response:
    """GET /portal/: 北京市中小企业公共服务平台首页, with the zone's entry."""
    user = await current_user(request)
    binding = await request.app[CERT].binding(user.id) if user else None
    programs = await request.app[ZONE].programs(state="open")
    context = {
        "user": user,
        "binding": binding,
        "programs": programs[:5],
        "zone_url": "/zone/" if binding or (user and user.is_staff) else CERTIFY_URL,
        "not_certified": NOT_CERTIFIED,
    }
    return render("portal/home.html", request, context)


async def app_home(request: web.Request) -> web.Response:
    """GET /api/app/home: the app's home entries; the zone's says whether it is open."""
    user, _ = await phone_user(request)
    binding = await request.app[CERT].binding(user.id)
    base = request.app[SETTINGS].base_url
    ready = binding is not None or user.is_staff
    zone: dict[str, Any] = {
        "key": "declaration_zone",
        "title": "一体化申报平台",
        "certified": binding is not None,
        "url": f"{base}/zone/" if ready else f"{base}{CERTIFY_URL}",
        "message": "" if ready else NOT_CERTIFIED,
    }
    open_programs = await request.app[ZONE].programs(state="open")
    return web.json_response({"entries": [zone], "programs": open_programs[:5]})


async def zone_page(request: web.Request) -> web.Response:
    """GET /zone/: the program list, with search and filters."""
    user, binding = await page_entrant(request)
    filters = _filters(request)
    zone = request.app[ZONE]
    context = {
        "user": user,
        "binding": binding,
        "filters": filters,
        "phases": PHASES,
        "programs": await zone.programs(**filters),
        "departments": await zone.departments(),
    }
    return render("zone/list.html", request, context)


async def program_page(request: web.Request) -> web.Response:
    """GET /zone/programs/{id}: 申报详情介绍."""
    user, binding = await page_entrant(request)
    program_id = int_param(request, "program_id", "unknown_program")
    program = await request.app[ZONE].program(program_id, staff=user.is_staff)
    return render(
        "zone/program.html",
        request,
        {"user": user, "binding": binding, "program": program},
    )


async def notice_page(request: web.Request) -> web.Response:
    """GET /zone/programs/{id}/notice: 申报通知, with the 申报入口 on top."""
    user, binding = await page_entrant(request)
    program_id = int_param(request, "program_id", "unknown_program")
    program = await request.app[ZONE].program(program_id, staff=user.is_staff)
    return render(
        "zone/notice.html",
        request,
        {"user": user, "binding": binding, "program": program},
    )


async def guide_page(request: web.Request) -> web.Response:
    """GET /zone/guides/{slug}: a staff-written guide, e.g. 高精尖资金申报引导."""
    user, binding = await page_entrant(request)
    guide = await request.app[ZONE].guide(request.match_info["slug"][:64])
    base = request.app[SETTINGS].base_url
    address = (
        f"{base}/short/{guide['short_code']}"
        if guide["short_code"]
        else (f"{base}/declare/login")
    )
    context = {
        "user": user,
        "binding": binding,
        "guide": guide,
        "address": address,
        "login_options": LOGIN_OPTIONS,
    }
    return render("zone/guide.html", request, context)


async def follow_short_link(request: web.Request) -> web.Response:
    """GET /short/{code}: count the visit and redirect to the staff-set target."""
    target = await request.app[ZONE].follow(request.match_info["code"])
    raise web.HTTPFound(target, headers={"Cache-Control": "no-store"})


async def programs_api(request: web.Request) -> web.Response:
    """GET /api/programs?q=&department=&state=: the zone's list, for the app."""
    _user, _ = await api_entrant(request)
    items = await request.app[ZONE].programs(**_filters(request))
    return web.json_response({"items": items})


async def program_api(request: web.Request) -> web.Response:
    """GET /api/programs/{id}: one program with its sanitised notice."""
    user, _ = await api_entrant(request)
    program_id = int_param(request, "program_id", "unknown_program")
    program = await request.app[ZONE].program(program_id, staff=user.is_staff)
    return web.json_response(program)
