"""HTTP handlers of the QR flow: thin, they parse, call the service and reply."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from server import jsontext
from server.auth.service import User
from server.auth.web import phone_user, start_web_session
from server.errors import BadRequest
from server.http import bearer, client_ip, parse_body, user_agent
from server.keys import AUTH, LIMITS, NOTIFY, QR, SETTINGS
from server.qr import images
from server.qr.service import describe_agent


class CreateSession(BaseModel):
    """Body of POST /api/qr/sessions; both fields only when rotating."""

    rotate_from: str | None = Field(None, max_length=64)
    watch_token: str | None = Field(None, max_length=200)


class Redeem(BaseModel):
    """Body of POST /api/qr/sessions/{id}/redeem."""

    ticket: str = Field(min_length=1, max_length=300)


def qr_url(request: web.Request, qr_id: str) -> str:
    """The URL inside the QR code: the app reads the id, a camera opens the page."""
    return f"{request.app[SETTINGS].base_url}/qr/s/{qr_id}"


async def create_session(request: web.Request) -> web.Response:
    """POST /api/qr/sessions: a new QR session for a waiting page."""
    ip = client_ip(request)
    await request.app[LIMITS].hit("qr_create", ip)
    body = await parse_body(request, CreateSession)
    created = await request.app[QR].create(
        ip=ip,
        user_agent=user_agent(request),
        rotate_from=body.rotate_from,
        rotate_token=body.watch_token,
    )
    settings = request.app[SETTINGS]
    ws_base = settings.base_url.replace("http", "ws", 1)
    qr_id = created.qr_id
    return jsontext.response(
        {
            "id": qr_id,
            "qr_url": qr_url(request, qr_id),
            "image_url": f"{settings.base_url}/api/qr/sessions/{qr_id}/image",
            "expires_in": settings.qr_lifetime,
            "watch_token": created.watch_token,
            "ws_url": f"{ws_base}/ws/qr/{qr_id}",
            "state": created.doc["state"],
            "version": created.doc["version"],
            "generation": created.doc["generation"],
        },
        status=201,
    )


def _wait_params(request: web.Request) -> tuple[float, int | None]:
    settings = request.app[SETTINGS]
    try:
        wait = float(request.query.get("wait", "0"))
        since = int(request.query["since"]) if "since" in request.query else None
    except ValueError as err:
        raise BadRequest("wait and since must be numbers.", code="bad_query") from err
    if not 0 <= wait <= settings.longpoll_max_wait:
        raise BadRequest(
            f"wait must be between 0 and {settings.longpoll_max_wait:g}.",
            code="bad_query",
        )
    return wait, since


async def watch_session(request: web.Request) -> web.Response:
    """GET /api/qr/sessions/{id}?wait=S&since=V: the long-poll fallback."""
    qr_id = request.match_info["qr_id"]
    service = request.app[QR]
    wait, since = _wait_params(request)
    service.check_watch_token(qr_id, bearer(request))
    if wait > 0:
        await request.app[LIMITS].hit("longpoll", client_ip(request))
    doc = await service.wait_for_change(qr_id, since=since, wait=wait)
    return jsontext.response(service.frame(doc, with_ticket=True))


async def session_image(request: web.Request) -> web.Response:
    """GET /api/qr/sessions/{id}/image: the QR code as SVG."""
    qr_id = request.match_info["qr_id"]
    await request.app[QR].load(qr_id)
    return web.Response(
        body=images.svg(qr_url(request, qr_id)),
        content_type="image/svg+xml",
        headers={"Cache-Control": "no-store"},
    )


async def app_download_image(request: web.Request) -> web.Response:
    """GET /qr/app-download.svg: the QR of the app's download page."""
    url = request.app[SETTINGS].app_download_url
    return web.Response(
        body=images.cached_svg(url),
        content_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def redeem_session(request: web.Request) -> web.Response:
    """POST /api/qr/sessions/{id}/redeem: trade the ticket for a session cookie."""
    qr_id = request.match_info["qr_id"]
    ip = client_ip(request)
    await request.app[LIMITS].hit("redeem", ip)
    body = await parse_body(request, Redeem)
    user_id = await request.app[QR].redeem(
        qr_id,
        watch_token=bearer(request),
        ticket=body.ticket,
        ip=ip,
        user_agent=user_agent(request),
    )
    user = await request.app[AUTH].get_user(user_id)
    if user is None:
        raise BadRequest("The account no longer exists.", code="unknown_user")
    response = jsontext.response(
        {"ok": True, "user": {"name": user.name}, "next": "/declare/"}
    )
    await start_web_session(request, response, user)
    browser, system = describe_agent(user_agent(request))
    request.app[NOTIFY].notify_soon(
        user.id,
        "security",
        "新的扫码登录",
        f"您的账号通过App扫码登录了电脑端（{browser}，{system}，IP {ip}）。如非本人操作，请立即修改密码。",
        link="/center/",
    )
    return response


async def _phone_step(request: web.Request) -> tuple[str, User, dict[str, str]]:
    """The session id, the phone's user (rate limited) and who is calling."""
    user, _ = await phone_user(request)
    await request.app[LIMITS].hit("scan", str(user.id))
    caller = {"ip": client_ip(request), "user_agent": user_agent(request)}
    return request.match_info["qr_id"], user, caller


async def scan(request: web.Request) -> web.Response:
    """POST /api/app/qr/{id}/scan: claim the session; details for the confirm screen."""
    qr_id, user, caller = await _phone_step(request)
    return jsontext.response(await request.app[QR].scan(qr_id, user, **caller))


async def confirm(request: web.Request) -> web.Response:
    """POST /api/app/qr/{id}/confirm: approve the login on the PC."""
    qr_id, user, caller = await _phone_step(request)
    await request.app[QR].confirm(qr_id, user, **caller)
    return jsontext.response({"ok": True, "state": "confirmed"})


async def cancel(request: web.Request) -> web.Response:
    """POST /api/app/qr/{id}/cancel: decline the login on the PC."""
    qr_id, user, caller = await _phone_step(request)
    await request.app[QR].cancel(qr_id, user, **caller)
    return jsontext.response({"ok": True, "state": "cancelled"})
