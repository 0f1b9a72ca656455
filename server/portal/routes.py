"""URL map of the pages."""

from __future__ import annotations

from aiohttp import web

from server.portal import account_pages, views


def setup(app: web.Application) -> None:
    """Register the page routes, each under a name templates can use."""
    add = app.router.add_route
    add("GET", "/", views.index, name="index")
    add("GET", "/declare/login", views.declare_login_page, name="declare_login")
    add("POST", "/declare/login", views.declare_login, name="declare_login_submit")
    add("GET", "/declare/", views.declare_home, name="declare_home")
    add("GET", "/m/login", views.mobile_login_page, name="mobile_login")
    add("POST", "/m/login", views.mobile_login, name="mobile_login_submit")
    add("GET", "/m/", views.mobile_home, name="mobile_home")
    add("GET", "/qr/s/{qr_id}", views.mobile_confirm, name="mobile_confirm")
    account_pages.setup(app)
