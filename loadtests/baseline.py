"""The yardstick: a bare aiohttp WebSocket server with the QR flow's public contract.

It does the least any server of this shape must do: accept the same HTTP requests
and sockets, keep each session in a dict, and write one frame to the watching
sockets when an HTTP request changes a session. There is no database, broker,
signing, validation, rate limit or audit. Every benchmark runs the same client
against it and against qrlogin, so the difference between the two is what the
real server's work costs on this machine.

Routes (the same names and shapes as the real server, see docs/benchmarks.md):

- ``POST /api/qr/sessions`` → 201 ``{id, watch_token, ws_url, ...}``
- ``GET /ws/qr/{id}``: first frame ``{"type": "auth", "token": ...}``, then state
  frames; closed with 1000 after a final state; ``ping`` gets ``pong``.
- ``POST /api/app/login`` → ``{"token"}``
- ``POST /api/app/qr/{id}/scan`` · ``/confirm`` · ``/cancel``: move and push.
- ``POST /api/qr/sessions/{id}/redeem``: check the ticket, push consumed, close.
- ``POST /push/{id}``: the bare primitive: push the request body's JSON object
  to every socket watching id.
- ``GET /healthz`` and ``GET /readyz`` (``{"sockets", "channels"}``).

Run: ``python -m loadtests.baseline --port 8124``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

FINAL = frozenset({"consumed", "cancelled", "expired"})
CLOSE_DONE = 1000
CLOSE_UNAUTHORIZED = 4001
CLOSE_UNKNOWN = 4004
AUTH_TIMEOUT = 5.0


@dataclass(slots=True)
class Session:
    """One QR session: its state, its secrets and the sockets watching it."""

    id: str
    watch_token: str
    expires_at: float
    state: str = "pending"
    version: int = 1
    changed_at: float = field(default_factory=time.time)
    ticket: str = ""
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None

    def frame(self) -> str:
        """The state frame, serialised once for every watcher."""
        body: dict[str, Any] = {
            "type": "state",
            "qr": self.id,
            "state": self.state,
            "version": self.version,
            "expires_in": max(0.0, round(self.expires_at - time.time(), 1)),
            "changed_at": self.changed_at,
        }
        if self.ticket and self.state == "confirmed":
            body["ticket"] = self.ticket
        return json.dumps(body, separators=(",", ":"))


SESSIONS = web.AppKey("sessions", dict[str, Session])
TOKENS = web.AppKey("tokens", set[str])
LIFETIME = web.AppKey("lifetime", float)


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": code}}, status=status)


def _bearer(request: web.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ").strip()


async def _push(session: Session) -> None:
    """Write the session's current frame to each watcher; close them when final."""
    data = session.frame()
    final = session.state in FINAL
    for ws in tuple(session.sockets):
        if ws.closed:
            continue
        try:
            await ws.send_str(data)
            if final:
                await ws.close(code=CLOSE_DONE, message=b"done")
        except (ConnectionError, RuntimeError):
            session.sockets.discard(ws)


async def _transition(app: web.Application, session: Session, new: str) -> None:
    """Move session to new, forget it when final, and push the change."""
    session.state = new
    session.version += 1
    session.changed_at = time.time()
    if new == "confirmed":
        session.ticket = secrets.token_urlsafe(24)
    if new in FINAL:
        app[SESSIONS].pop(session.id, None)
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
    await _push(session)


def _expire_later(app: web.Application, session: Session) -> None:
    """Arm the session's expiry, as the real server does for each live session."""
    loop = asyncio.get_running_loop()

    def fire() -> None:
        session.timer = None
        if session.state not in FINAL:
            loop.create_task(_transition(app, session, "expired"))

    session.timer = loop.call_at(
        loop.time() + max(0.0, session.expires_at - time.time()), fire
    )


async def _move(
    request: web.Request, wanted: str, new: str, *, phone: bool
) -> Session | web.Response:
    """Check the caller and the state, move the session to new and push it."""
    session = request.app[SESSIONS].get(request.match_info["qr_id"])
    if session is None:
        return _error(404, "unknown_session")
    if phone and _bearer(request) not in request.app[TOKENS]:
        return _error(401, "unauthorized")
    if session.state != wanted:
        return _error(409, "wrong_state")
    await _transition(request.app, session, new)
    return session


async def create_session(request: web.Request) -> web.Response:
    """POST /api/qr/sessions."""
    await request.read()
    qr_id = secrets.token_urlsafe(18)
    lifetime = request.app[LIFETIME]
    session = Session(qr_id, secrets.token_urlsafe(24), time.time() + lifetime)
    request.app[SESSIONS][qr_id] = session
    _expire_later(request.app, session)
    base = f"http://{request.host}"
    return web.json_response(
        {
            "id": qr_id,
            "qr_url": f"{base}/qr/s/{qr_id}",
            "image_url": f"{base}/api/qr/sessions/{qr_id}/image",
            "expires_in": lifetime,
            "watch_token": session.watch_token,
            "ws_url": f"ws://{request.host}/ws/qr/{qr_id}",
            "state": session.state,
            "version": session.version,
            "generation": 0,
        },
        status=201,
    )


async def watch(request: web.Request) -> web.WebSocketResponse:
    """GET /ws/qr/{id}: authenticate, send the snapshot, then push changes."""
    ws = web.WebSocketResponse(compress=False, heartbeat=25.0)
    await ws.prepare(request)
    session = request.app[SESSIONS].get(request.match_info["qr_id"])
    try:
        first = await ws.receive(timeout=AUTH_TIMEOUT)
    except TimeoutError:
        await ws.close(code=CLOSE_UNAUTHORIZED)
        return ws
    token = ""
    if first.type == WSMsgType.TEXT:
        try:
            token = str(json.loads(first.data).get("token", ""))
        except (ValueError, AttributeError):
            token = ""
    if session is None:
        await ws.close(code=CLOSE_UNKNOWN)
        return ws
    if not secrets.compare_digest(token, session.watch_token):
        await ws.close(code=CLOSE_UNAUTHORIZED)
        return ws
    session.sockets.add(ws)
    try:
        await ws.send_str(session.frame())
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                request_id = json.loads(message.data).get("id")
            except (ValueError, AttributeError):
                request_id = None
            await ws.send_json({"type": "result", "id": request_id, "result": "pong"})
    finally:
        session.sockets.discard(ws)
    return ws


async def app_login(request: web.Request) -> web.Response:
    """POST /api/app/login: any account, any password; a fresh token."""
    await request.read()
    token = secrets.token_urlsafe(32)
    request.app[TOKENS].add(token)
    return web.json_response({"token": token, "token_type": "bearer"})


async def scan(request: web.Request) -> web.Response:
    """POST /api/app/qr/{id}/scan."""
    moved = await _move(request, "pending", "scanned", phone=True)
    if isinstance(moved, web.Response):
        return moved
    return web.json_response({"qr": moved.id, "state": moved.state, "requester": {}})


async def confirm(request: web.Request) -> web.Response:
    """POST /api/app/qr/{id}/confirm."""
    moved = await _move(request, "scanned", "confirmed", phone=True)
    if isinstance(moved, web.Response):
        return moved
    return web.json_response({"ok": True, "state": "confirmed"})


async def cancel(request: web.Request) -> web.Response:
    """POST /api/app/qr/{id}/cancel."""
    moved = await _move(request, "scanned", "cancelled", phone=True)
    if isinstance(moved, web.Response):
        return moved
    return web.json_response({"ok": True, "state": "cancelled"})


async def redeem(request: web.Request) -> web.Response:
    """POST /api/qr/sessions/{id}/redeem: the ticket for a cookie, once."""
    session = request.app[SESSIONS].get(request.match_info["qr_id"])
    try:
        ticket = str((await request.json()).get("ticket", ""))
    except (ValueError, AttributeError):
        return _error(400, "bad_json")
    if session is None:
        return _error(404, "unknown_session")
    if not secrets.compare_digest(_bearer(request), session.watch_token):
        return _error(401, "bad_watch_token")
    if session.state != "confirmed" or not secrets.compare_digest(
        ticket, session.ticket
    ):
        return _error(409, "wrong_state")
    moved = await _move(request, "confirmed", "consumed", phone=False)
    if isinstance(moved, web.Response):
        return moved
    response = web.json_response({"ok": True, "next": "/declare/"})
    response.set_cookie("qrl_session", secrets.token_urlsafe(32), httponly=True)
    return response


async def push(request: web.Request) -> web.Response:
    """POST /push/{id}: send the body to every socket watching id, as is."""
    body = await request.text()
    session = request.app[SESSIONS].get(request.match_info["qr_id"])
    if session is None:
        return _error(404, "unknown_session")
    for ws in tuple(session.sockets):
        await ws.send_str(body)
    return web.json_response({"sent": len(session.sockets)})


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz."""
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: the same counters as the real server."""
    sessions = request.app[SESSIONS].values()
    watched = [s for s in sessions if s.sockets]
    sockets = sum(len(s.sockets) for s in watched)
    return web.json_response({"ok": True, "sockets": sockets, "channels": len(watched)})


def create_app(*, lifetime: float = 120.0) -> web.Application:
    """The baseline application."""
    app = web.Application(client_max_size=64 * 1024)
    app[SESSIONS] = {}
    app[TOKENS] = set()
    app[LIFETIME] = lifetime
    app.router.add_post("/api/qr/sessions", create_session)
    app.router.add_get("/ws/qr/{qr_id}", watch)
    app.router.add_post("/api/qr/sessions/{qr_id}/redeem", redeem)
    app.router.add_post("/api/app/login", app_login)
    app.router.add_post("/api/app/qr/{qr_id}/scan", scan)
    app.router.add_post("/api/app/qr/{qr_id}/confirm", confirm)
    app.router.add_post("/api/app/qr/{qr_id}/cancel", cancel)
    app.router.add_post("/push/{qr_id}", push)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--host", default="127.0.0.1")
    cli.add_argument("--port", type=int, default=8124)
    cli.add_argument("--lifetime", type=float, default=120.0, help="QR lifetime, s")
    args = cli.parse_args(argv)
    raise_fd_limit()
    web.run_app(
        create_app(lifetime=args.lifetime),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        shutdown_timeout=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
