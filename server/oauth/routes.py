"""URL map of third-party login, and the wiring of its service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import aiohttp_jinja2
from aiohttp import web

from server.keys import AUTH, BROKER, CLOCK, ENGINE, SETTINGS
from server.oauth import api, views
from server.oauth.client import ProviderClient
from server.oauth.config import Provider, load_providers
from server.oauth.keys import OAUTH
from server.oauth.service import OAuthService

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def setup(app: web.Application) -> None:
    """Register the routes; a bad QRLOGIN_OAUTH_PROVIDERS is a ConfigError here."""
    providers = load_providers(app[SETTINGS])
    # The login pages list exactly the configured providers, in setting order.
    aiohttp_jinja2.get_env(app).globals["oauth_providers"] = [
        {"name": p.name, "label": p.label} for p in providers.values()
    ]
    app.cleanup_ctx.append(_context(providers))

    add = app.router.add_route
    add("GET", "/oauth/{provider}/start", views.start, name="oauth_start")
    add("GET", "/oauth/{provider}/callback", views.callback, name="oauth_callback")
    add("GET", "/oauth/link", views.link_page, name="oauth_link")
    add("POST", "/oauth/link", views.link, name="oauth_link_submit")
    add("POST", "/oauth/register", views.register, name="oauth_register_submit")
    add("POST", "/api/app/oauth/link", api.app_link, name="app_oauth_link")
    add("POST", "/api/app/oauth/{provider}", api.app_sign_in, name="app_oauth_sign_in")


def _context(providers: dict[str, Provider]) -> CleanupContext:
    """A cleanup context owning the HTTP client the providers are called with."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        timeout = aiohttp.ClientTimeout(total=settings.oauth_http_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            app[OAUTH] = OAuthService(
                engine=app[ENGINE],
                broker=app[BROKER],
                auth=app[AUTH],
                client=ProviderClient(http, timeout=settings.oauth_http_timeout),
                providers=providers,
                settings=settings,
                clock=app[CLOCK],
            )
            yield

    return context
