"""HTTP handlers of the notification center, for pages and the app alike."""

from __future__ import annotations

from aiohttp import web

from server.auth.web import current_user, phone_user
from server.errors import NotFound
from server.keys import NOTIFY
from server.pages import render


async def list_notifications(request: web.Request) -> web.Response:
    """GET /api/notifications?after=ID: newest first, or those after an id."""
    user, _ = await phone_user(request)
    notify = request.app[NOTIFY]
    after = request.query.get("after")
    if after is not None and after.isdigit():
        items = await notify.after(user.id, int(after))
    else:
        items = await notify.latest(user.id)
    return web.json_response({"items": items, "unread": await notify.unread(user.id)})


async def mark_read(request: web.Request) -> web.Response:
    """POST /api/notifications/{id}/read."""
    user, _ = await phone_user(request)
    raw = request.match_info["notification_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("No such notification.", code="unknown_notification")
    await request.app[NOTIFY].mark_read(user.id, int(raw))
    return web.json_response(
        {"ok": True, "unread": await request.app[NOTIFY].unread(user.id)}
    )


async def mark_all_read(request: web.Request) -> web.Response:
    """POST /api/notifications/read-all."""
    user, _ = await phone_user(request)
    changed = await request.app[NOTIFY].mark_read(user.id, None)
    return web.json_response({"ok": True, "marked": changed, "unread": 0})


async def notifications_page(request: web.Request) -> web.Response:
    """GET /notifications and /m/notifications: the list, newest first."""
    user = await current_user(request)
    mobile = request.path.startswith("/m/")
    if user is None:
        raise web.HTTPFound(
            ("/m/login" if mobile else "/declare/login") + f"?next={request.path}"
        )
    items = await request.app[NOTIFY].latest(user.id)
    return render(
        "notify/list.html", request, {"user": user, "items": items, "mobile": mobile}
    )
