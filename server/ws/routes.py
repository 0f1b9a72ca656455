"""URL map of the WebSockets."""

from __future__ import annotations

from aiohttp import web

from server.ws import user, views


def setup(app: web.Application) -> None:
    """Register the socket routes and close them all at shutdown."""
    app.router.add_get("/ws/qr/{qr_id}", views.watch_qr, name="ws_qr")
    app.router.add_get("/ws", user.user_socket, name="ws_user")
    app.on_shutdown.append(views.close_all)
