"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import os

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from server.errors import Unavailable
from server.keys import BROKER, ENGINE, HUB


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process answers (with its pid, to tell workers apart)."""
    return web.json_response({"ok": True, "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: the database and the broker both answer."""
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (SQLAlchemyError, OSError) as err:
        raise Unavailable(
            "The database cannot be reached.", code="database_down"
        ) from err
    await request.app[BROKER].ping()
    hub = request.app[HUB]
    return web.json_response(
        {
            "ok": True,
            "database": "ok",
            "broker": "ok",
            "sockets": len(hub),
            "channels": hub.channels,
        }
    )


def setup(app: web.Application) -> None:
    """Register the probes."""
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
