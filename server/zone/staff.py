"""Staff handlers of the zone: programs and their notices, guides, short links."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import BaseModel, Field

from server.http import client_ip, parse_body
from server.keys import SETTINGS, ZONE
from server.pages import render
from server.zone.access import api_staff, int_param, page_staff
from server.zone.service import BEIJING, PHASES, PROGRAM_STATUSES


class ProgramForm(BaseModel):
    """Body of POST /api/staff/programs and PUT /api/staff/programs/{id}.

    Times without an offset are Beijing time; the notice is cleaned on save.
    """

    title: str = Field(max_length=128)
    department: str = Field(max_length=64)
    summary: str = Field("", max_length=1000)
    notice_html: str = Field("", max_length=100_000)
    entry_url: str = Field("", max_length=512)
    opens_at: dt.datetime
    closes_at: dt.datetime
    status: str = Field("draft", pattern="^(draft|published|archived)$")


class ProgramStatus(BaseModel):
    """Body of POST /api/staff/programs/{id}/status."""

    status: str = Field(pattern="^(draft|published|archived)$")


class GuideForm(BaseModel):
    """Body of PUT /api/staff/guides/{slug}: the guide page and its short link."""

    title: str = Field(max_length=128)
    body_html: str = Field("", max_length=100_000)
    short_code: str = Field("", max_length=32)


class ShortLinkForm(BaseModel):
    """Body of POST /api/staff/short-links; an existing code is retargeted."""

    target: str = Field(max_length=1024)
    code: str = Field("", max_length=32)


async def staff_programs(request: web.Request) -> web.Response:
    """GET /api/staff/programs: every program, drafts and archived ones included."""
    await api_staff(request)
    return web.json_response({"items": await request.app[ZONE].programs(staff=True)})


async def create_program(request: web.Request) -> web.Response:
    """POST /api/staff/programs: add a program."""
    staff = await api_staff(request)
    body = await parse_body(request, ProgramForm)
    program_id = await request.app[ZONE].save_program(
        staff, None, **body.model_dump(), ip=client_ip(request)
    )
    return web.json_response(
        {"id": program_id, "next": f"/staff/programs/{program_id}"}, status=201
    )


async def update_program(request: web.Request) -> web.Response:
    """PUT /api/staff/programs/{id}: replace a program's fields."""
    staff = await api_staff(request)
    program_id = int_param(request, "program_id", "unknown_program")
    body = await parse_body(request, ProgramForm)
    await request.app[ZONE].save_program(
        staff, program_id, **body.model_dump(), ip=client_ip(request)
    )
    return web.json_response({"id": program_id})


async def program_status(request: web.Request) -> web.Response:
    """POST /api/staff/programs/{id}/status: publish, archive, back to draft."""
    staff = await api_staff(request)
    program_id = int_param(request, "program_id", "unknown_program")
    body = await parse_body(request, ProgramStatus)
    await request.app[ZONE].set_program_status(
        staff, program_id, body.status, ip=client_ip(request)
    )
    return web.json_response({"id": program_id, "status": body.status})


async def save_guide(request: web.Request) -> web.Response:
    """PUT /api/staff/guides/{slug}: write a guide page."""
    staff = await api_staff(request)
    body = await parse_body(request, GuideForm)
    slug = request.match_info["slug"]
    await request.app[ZONE].save_guide(
        staff, slug, **body.model_dump(), ip=client_ip(request)
    )
    return web.json_response({"slug": slug, "url": f"/zone/guides/{slug}"})


async def short_links(request: web.Request) -> web.Response:
    """GET /api/staff/short-links: every short link and its hits."""
    await api_staff(request)
    return web.json_response({"items": await request.app[ZONE].short_links()})


async def save_short_link(request: web.Request) -> web.Response:
    """POST /api/staff/short-links: create or retarget a short link."""
    staff = await api_staff(request)
    body = await parse_body(request, ShortLinkForm)
    code = await request.app[ZONE].save_short_link(
        staff, **body.model_dump(), ip=client_ip(request)
    )
    url = f"{request.app[SETTINGS].base_url}/short/{code}"
    return web.json_response({"code": code, "url": url}, status=201)


async def zone_staff_page(request: web.Request) -> web.Response:
    """GET /staff/zone: programs, guides and short links for staff."""
    user = await page_staff(request)
    zone = request.app[ZONE]
    context = {
        "user": user,
        "programs": await zone.programs(staff=True),
        "guides": await zone.guides(),
        "links": await zone.short_links(),
        "statuses": PROGRAM_STATUSES,
        "phases": PHASES,
        "base_url": request.app[SETTINGS].base_url,
    }
    return render("zone/staff.html", request, context)


async def program_edit_page(request: web.Request) -> web.Response:
    """GET /staff/programs/{id}: edit one program and its notice."""
    user = await page_staff(request)
    program_id = int_param(request, "program_id", "unknown_program")
    program = await request.app[ZONE].program(program_id, staff=True)

    def local(stamp: float) -> str:
        return dt.datetime.fromtimestamp(stamp, BEIJING).strftime("%Y-%m-%dT%H:%M")

    context = {
        "user": user,
        "program": program,
        "statuses": PROGRAM_STATUSES,
        "opens_local": local(program["opens_at"]),
        "closes_local": local(program["closes_at"]),
    }
    return render("zone/program_edit.html", request, context)
