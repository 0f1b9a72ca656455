"""URL map of logging in and out."""

from __future__ import annotations

from aiohttp import web

from server.auth import views


def setup(app: web.Application) -> None:
    """Register the login routes, each under a name."""
    add = app.router.add_route
    add("POST", "/api/app/login", views.app_login, name="app_login")
    add("POST", "/api/app/logout", views.app_logout, name="app_logout")
    add("GET", "/api/app/me", views.me, name="app_me")
    add("POST", "/logout", views.logout, name="logout")
