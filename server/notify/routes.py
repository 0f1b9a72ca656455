"""URL map of the notification center."""

from __future__ import annotations

from aiohttp import web

from server.notify import views


def setup(app: web.Application) -> None:
    """Register the notification routes."""
    add = app.router.add_route
    add("GET", "/api/notifications", views.list_notifications, name="notifications_api")
    add(
        "POST",
        "/api/notifications/read-all",
        views.mark_all_read,
        name="notifications_read_all",
    )
    add(
        "POST",
        "/api/notifications/{notification_id}/read",
        views.mark_read,
        name="notification_read",
    )
    add("GET", "/notifications", views.notifications_page, name="notifications")
    add(
        "GET", "/m/notifications", views.notifications_page, name="mobile_notifications"
    )
