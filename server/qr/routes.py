"""URL map of the QR flow."""

from __future__ import annotations

from aiohttp import web

from server.qr import views


def setup(app: web.Application) -> None:
    """Register the QR routes, each under a name."""
    add = app.router.add_route
    add("POST", "/api/qr/sessions", views.create_session, name="qr_create")
    add("GET", "/api/qr/sessions/{qr_id}", views.watch_session, name="qr_watch")
    add("GET", "/api/qr/sessions/{qr_id}/image", views.session_image, name="qr_image")
    add(
        "POST",
        "/api/qr/sessions/{qr_id}/redeem",
        views.redeem_session,
        name="qr_redeem",
    )
    add("POST", "/api/app/qr/{qr_id}/scan", views.scan, name="app_qr_scan")
    add("POST", "/api/app/qr/{qr_id}/confirm", views.confirm, name="app_qr_confirm")
    add("POST", "/api/app/qr/{qr_id}/cancel", views.cancel, name="app_qr_cancel")
    add("GET", "/qr/app-download.svg", views.app_download_image, name="app_download_qr")
