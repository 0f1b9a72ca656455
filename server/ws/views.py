"""The page's live view of one QR session: /ws/qr/{id}.

Order matters for not losing a transition: authenticate, subscribe to the
session's channel, then read the snapshot, then forward only newer versions.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSMsgType, web

from server import jsontext
from server.background import spawn
from server.errors import AppError
from server.keys import HUB, QR, SETTINGS, SOCKETS
from server.qr.service import TERMINAL, QrService, key
from server.ws import protocol
from server.ws.connection import Connection
from server.ws.socket import open_socket

log = logging.getLogger(__name__)


class Watch:
    """The state one socket keeps while it watches a session."""

    __slots__ = ("conn", "loop", "qr_id", "service", "timer", "version")

    def __init__(
        self, conn: Connection, service: QrService, qr_id: str, version: int
    ) -> None:
        self.conn = conn
        self.service = service
        self.qr_id = qr_id
        self.version = version
        self.timer: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()

    def __call__(self, data: str | None) -> None:
        """A message from the hub: a new document, or None to re-read."""
        if data is None:
            spawn(self.refresh(), name="ws-refresh")
            return
        self.show(jsontext.loads(data))

    async def refresh(self) -> None:
        """Re-read the snapshot (after a resubscribe, or on request)."""
        try:
            self.show(await self.service.load(self.qr_id))
        except AppError as err:
            self.conn.send(protocol.error(err.code, err.message))

    def show(self, doc: dict[str, Any]) -> None:
        """Send doc if it is newer than what this page has seen."""
        if doc["version"] <= self.version:
            return
        self.version = doc["version"]
        final = doc["state"] in TERMINAL
        frame = self.service.frame(doc, with_ticket=True)
        self.conn.send(frame, then_close=protocol.CLOSE_DONE if final else None)
        self._arm_timer(doc, final)

    def _arm_timer(self, doc: dict[str, Any], final: bool) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if final:
            return
        delay = max(0.0, doc["expires_at"] - self.service.clock())
        self.timer = self.loop.call_later(delay + 0.01, self._expire)

    def _expire(self) -> None:
        self.timer = None
        spawn(self._expire_now(), name="qr-expire")

    async def _expire_now(self) -> None:
        doc = await self.service.expire(self.qr_id)
        if doc is not None:
            self.show(doc)

    def stop(self) -> None:
        """Cancel the expiry timer."""
        if self.timer is not None:
            self.timer.cancel()


async def _authenticate(
    ws: web.WebSocketResponse, conn: Connection, request: web.Request, qr_id: str
) -> int | None:
    """Wait for the auth frame; returns the version the client has seen, or None."""
    settings = request.app[SETTINGS]
    try:
        msg = await ws.receive(timeout=settings.ws_auth_timeout)
    except TimeoutError:
        conn.send(
            protocol.error("auth_timeout", "Send an auth frame first."),
            then_close=protocol.CLOSE_AUTH_TIMEOUT,
        )
        return None
    if msg.type != WSMsgType.TEXT:
        conn.close(protocol.CLOSE_UNAUTHORIZED)
        return None
    try:
        frame = protocol.parse(msg.data, max_size=settings.ws_max_frame)
        if frame["type"] != "auth":
            raise protocol.FrameError("unauthorized", "The first frame must be auth.")
        request.app[QR].check_watch_token(qr_id, frame.get("token"))
        seen = frame.get("version", 0)
        return seen if isinstance(seen, int) and not isinstance(seen, bool) else 0
    except protocol.FrameError as err:
        conn.send(
            protocol.error(err.code, err.message),
            then_close=protocol.CLOSE_UNAUTHORIZED,
        )
    except AppError as err:
        log.warning("WebSocket auth failed from %s: %s", conn.peer, err.code)
        conn.send(
            protocol.error(err.code, err.message),
            then_close=protocol.CLOSE_UNAUTHORIZED,
        )
    return None


def _answer(conn: Connection, watch: Watch, text: str, max_size: int) -> None:
    """Handle one client frame after auth."""
    try:
        frame = protocol.parse(text, max_size=max_size)
    except protocol.FrameError as err:
        log.warning("malformed frame from %s: %s", conn.peer, err.code)
        conn.send(protocol.error(err.code, err.message, err.request_id))
        return
    request_id, kind = frame.get("id"), frame["type"]
    if kind == "ping":
        conn.send(protocol.result(request_id, "pong"))
    elif kind == "refresh":
        watch.version = 0
        spawn(watch.refresh(), name="ws-refresh")
        conn.send(protocol.result(request_id, "ok"))
    else:
        conn.send(
            protocol.error("unknown_type", f"Unknown frame type {kind!r}.", request_id)
        )


async def watch_qr(request: web.Request) -> web.WebSocketResponse:
    """GET /ws/qr/{id}: push every state change of one session to its page."""
    settings = request.app[SETTINGS]
    qr_id = request.match_info["qr_id"]
    ws, conn = await open_socket(request)

    seen = await _authenticate(ws, conn, request, qr_id)
    if seen is None:
        await conn.wait_sent()
        return ws

    service, hub = request.app[QR], request.app[HUB]
    watch = Watch(conn, service, qr_id, seen)
    channel = key(qr_id)
    try:
        await hub.add(channel, watch)
        try:
            watch.show(await service.load(qr_id))
        except AppError as err:
            code = (
                protocol.CLOSE_UNKNOWN
                if err.status == 404
                else protocol.CLOSE_UNAUTHORIZED
            )
            conn.send(protocol.error(err.code, err.message), then_close=code)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                _answer(conn, watch, msg.data, settings.ws_max_frame)
            elif msg.type == WSMsgType.BINARY:
                conn.send(protocol.error("bad_frame", "Frames must be text."))
    finally:
        watch.stop()
        await hub.remove(channel, watch)
    return ws


async def close_all(app: web.Application) -> None:
    """On shutdown: tell every socket to reconnect elsewhere (1012, restart)."""
    sockets = list(app[SOCKETS])
    for ws in sockets:
        await ws.close(code=protocol.CLOSE_RESTART, message=b"restart")
