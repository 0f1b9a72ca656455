"""URL map of logging in and out."""

from __future__ import annotations

from aiohttp import web

from server.auth import account_views, views


def setup(app: web.Application) -> None:
    """Register the login routes, each under a name."""
    setup_accounts(app)
    add = app.router.add_route
    add("POST", "/api/app/login", views.app_login, name="app_login")
    add("POST", "/api/app/logout", views.app_logout, name="app_logout")
    add("GET", "/api/app/me", views.me, name="app_me")
    add("POST", "/logout", views.logout, name="logout")


def setup_accounts(app: web.Application) -> None:
    """Register captchas, codes, registration, recovery and the personal center."""
    add = app.router.add_route
    add("POST", "/api/captcha", account_views.new_captcha, name="captcha_new")
    add(
        "GET",
        "/api/captcha/{captcha_id}/image",
        account_views.captcha_image,
        name="captcha_image",
    )
    add("POST", "/api/codes", account_views.send_code, name="code_send")
    add(
        "GET",
        "/api/auth/username-available",
        account_views.username_available,
        name="username_available",
    )
    add("POST", "/api/auth/register", account_views.register, name="register_api")
    add("POST", "/api/auth/code-login", account_views.code_login, name="code_login")
    add("POST", "/api/auth/reset", account_views.reset_password, name="password_reset")
    add("POST", "/api/app/register", account_views.app_register, name="app_register")
    add(
        "POST",
        "/api/app/code-login",
        account_views.app_code_login,
        name="app_code_login",
    )
    add("GET", "/api/me", account_views.me, name="me")
    add("PATCH", "/api/me", account_views.update_me, name="me_update")
    add("POST", "/api/me/password", account_views.change_password, name="me_password")
    add("POST", "/api/me/phone", account_views.change_phone, name="me_phone")
    add("GET", "/api/me/sessions", account_views.list_sessions, name="me_sessions")
    add(
        "DELETE",
        "/api/me/sessions/{session_id}",
        account_views.revoke_session,
        name="me_session_revoke",
    )
    add(
        "POST",
        "/api/me/logout-all",
        account_views.logout_everywhere,
        name="me_logout_all",
    )
