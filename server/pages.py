"""Rendering pages: every template gets the request and its CSRF token."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from server.auth.csrf import csrf_token, send_csrf_cookie
from server.keys import SETTINGS


def render(
    template: str, request: web.Request, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render template with the request, the CSRF token and the mode added."""
    full = {
        "request": request,
        "csrf_token": csrf_token(request),
        "development": request.app[SETTINGS].is_development,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    send_csrf_cookie(request, response)
    return response
