"""The user's own socket, /ws: notifications pushed live to every open page and app.

Authenticate (app token in the first frame, or the browser's session cookie), say
the last notification id seen, get everything after it from the database, then the
live stream. Live messages that arrive while the backlog is read are held and sent
after it, so ids go out in order, each once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from server.auth.web import COOKIE
from server.background import spawn
from server.errors import AppError
from server.keys import AUTH, HUB, NOTIFY, SETTINGS
from server.notify.store import channel
from server.ws import protocol
from server.ws.connection import Connection
from server.ws.socket import open_socket

log = logging.getLogger(__name__)

BACKLOG = 500


class Feed:
    """One socket's view of one user's notifications."""

    __slots__ = ("conn", "user_id", "last_id", "ready", "held", "notify")

    def __init__(
        self, conn: Connection, user_id: int, last_id: int, notify: Any
    ) -> None:
        self.conn = conn
        self.user_id = user_id
        self.last_id = last_id
        self.ready = False
        self.held: list[dict[str, Any]] = []
        self.notify = notify

    def __call__(self, data: str | None) -> None:
        """A message from the hub: a notification, a read mark, or None to catch up."""
        if data is None:
            spawn(self.catch_up(), name="ws-feed-catch-up")
            return
        message = json.loads(data)
        if message["event"] == "read":
            self.conn.send({"type": "read", "notification": message["notification"]})
        elif not self.ready:
            self.held.append(message["notification"])
        else:
            self.send(message["notification"])

    def send(self, note: dict[str, Any]) -> None:
        """Send a notification unless this socket already has it."""
        if note["id"] > self.last_id:
            self.last_id = note["id"]
            self.conn.send({"type": "notification", "notification": note})

    async def catch_up(self) -> None:
        """Send what the database has after last_id, then anything held meanwhile."""
        for note in await self.notify.after(self.user_id, self.last_id, BACKLOG):
            self.send(note)
        self.ready = True
        held, self.held = self.held, []
        for note in sorted(held, key=lambda n: n["id"]):
            self.send(note)


async def _authenticate(
    request: web.Request, ws: web.WebSocketResponse, conn: Connection
) -> tuple[int, int] | None:
    """(user id, last id seen) from the auth frame, or None after closing."""
    settings = request.app[SETTINGS]
    try:
        msg = await ws.receive(timeout=settings.ws_auth_timeout)
    except TimeoutError:
        conn.send(
            protocol.error("auth_timeout", "Send an auth frame first."),
            then_close=protocol.CLOSE_AUTH_TIMEOUT,
        )
        return None
    try:
        if msg.type != WSMsgType.TEXT:
            raise protocol.FrameError("unauthorized", "The first frame must be auth.")
        frame = protocol.parse(msg.data, max_size=settings.ws_max_frame)
        if frame["type"] != "auth":
            raise protocol.FrameError("unauthorized", "The first frame must be auth.")
        token = frame.get("token")
        auth = request.app[AUTH]
        if isinstance(token, str) and token:
            user, _ = await auth.resolve(token, "app")
        else:
            user, _ = await auth.resolve(request.cookies.get(COOKIE), "web")
        last_id = frame.get("last_id", 0)
        if not isinstance(last_id, int) or isinstance(last_id, bool) or last_id < 0:
            last_id = 0
        return user.id, last_id
    except (protocol.FrameError, AppError) as err:
        log.warning("user socket auth failed from %s: %s", conn.peer, err)
        code = getattr(err, "code", "unauthorized")
        conn.send(
            protocol.error(code, str(err)), then_close=protocol.CLOSE_UNAUTHORIZED
        )
        return None


async def _answer(request: web.Request, feed: Feed, text: str) -> None:
    settings = request.app[SETTINGS]
    try:
        frame = protocol.parse(text, max_size=settings.ws_max_frame)
    except protocol.FrameError as err:
        feed.conn.send(protocol.error(err.code, err.message, err.request_id))
        return
    request_id, kind = frame.get("id"), frame["type"]
    if kind == "ping":
        feed.conn.send(protocol.result(request_id, "pong"))
    elif kind == "mark_read":
        target = frame.get("notification")
        if target != "all" and (
            not isinstance(target, int) or isinstance(target, bool)
        ):
            feed.conn.send(
                protocol.error(
                    "bad_frame", "notification must be an id or all", request_id
                )
            )
            return
        try:
            changed = await feed.notify.mark_read(
                feed.user_id, None if target == "all" else target
            )
        except AppError as err:
            feed.conn.send(protocol.error(err.code, err.message, request_id))
            return
        feed.conn.send(protocol.result(request_id, {"marked": changed}))
    else:
        feed.conn.send(
            protocol.error("unknown_type", f"Unknown frame type {kind!r}.", request_id)
        )


async def user_socket(request: web.Request) -> web.WebSocketResponse:
    """GET /ws: the authenticated notification stream."""
    ws, conn = await open_socket(request)
    who = await _authenticate(request, ws, conn)
    if who is None:
        await conn.wait_sent()
        return ws

    user_id, last_id = who
    notify, hub = request.app[NOTIFY], request.app[HUB]
    feed = Feed(conn, user_id, last_id, notify)
    await hub.add(channel(user_id), feed)
    try:
        await feed.catch_up()
        conn.send(
            {
                "type": "ready",
                "unread": await notify.unread(user_id),
                "last_id": feed.last_id,
            }
        )
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await _answer(request, feed, msg.data)
            elif msg.type == WSMsgType.BINARY:
                conn.send(protocol.error("bad_frame", "Frames must be text."))
    finally:
        await hub.remove(channel(user_id), feed)
    return ws
