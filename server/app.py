"""The application factory: a table of contents of the server."""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import database, health, openapi
from server.audit import Audit
from server.auth import routes as auth_routes
from server.auth.codes import Codes
from server.auth.csrf import csrf_middleware
from server.auth.service import AuthService
from server.auth.usercache import UserCache
from server.broker import create_broker
from server.broker.hub import Hub
from server.certification import routes as certification_routes
from server.certification.oidc import IdentityClient
from server.certification.service import Certification
from server.declarations import routes as declaration_routes
from server.declarations.service import Declarations
from server.declarations.storage import LocalStorage
from server.delivery import Delivery
from server.errors import error_middleware
from server.keys import (
    AUDIT,
    AUTH,
    BROKER,
    CERT,
    CLOCK,
    DECLARATIONS,
    DELIVERY,
    ENGINE,
    HUB,
    IDENTITY,
    LIMITS,
    NOTIFY,
    QR,
    SETTINGS,
    SOCKETS,
    ZONE,
    Clock,
)
from server.notify import routes as notify_routes
from server.notify.service import Notifications
from server.oauth import routes as oauth_routes
from server.portal import routes as portal_routes
from server.qr import routes as qr_routes
from server.qr.service import QrService
from server.ratelimit import RateLimits
from server.settings import Settings
from server.ws import routes as ws_routes
from server.zone import routes as zone_routes
from server.zone.service import Zone

ROOT = Path(__file__).resolve().parent.parent

_MIGRATE = web.AppKey("migrate", bool)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response gets (on_response_prepare): no framing, no sniffing,
    no referrer leaks. A signal rather than a middleware, so a long-running handler
    keeps no frame of it alive. A WebSocket's 101 has no content to protect, and its
    headers live as long as the socket (0.4 KiB more per waiting page)."""
    if isinstance(response, web.WebSocketResponse):
        return
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")


async def backends(app: web.Application) -> AsyncIterator[None]:
    """Open the database and broker, wire the services, and close all at the end."""
    settings = app[SETTINGS]
    async for engine in database.engine_context(settings, migrate=app[_MIGRATE]):
        broker = create_broker(settings.broker_url, clock=app[CLOCK])
        hub = Hub(broker)
        await broker.start()
        audit = Audit(engine)
        app[ENGINE], app[BROKER], app[HUB], app[AUDIT] = engine, broker, hub, audit
        app[LIMITS] = RateLimits(
            broker.limits_storage(),
            {
                "qr_create": settings.limit_qr_create,
                "app_login": settings.limit_app_login,
                "scan": settings.limit_scan,
                "redeem": settings.limit_redeem,
                "longpoll": settings.limit_longpoll,
                "code_hour": settings.limit_code_hour,
                "code_day": settings.limit_code_day,
                "code_ip": settings.limit_code_ip,
            },
            gate=broker.gate,
        )
        delivery = Delivery(settings, broker)
        app[DELIVERY] = delivery
        codes = Codes(
            broker=broker,
            limits=app[LIMITS],
            delivery=delivery,
            settings=settings,
            clock=app[CLOCK],
        )
        services = {"audit": audit, "settings": settings, "clock": app[CLOCK]}
        app[NOTIFY] = notify = Notifications(engine=engine, broker=broker)
        users = UserCache(
            broker,
            hub,
            app[CLOCK],
            ttl=settings.user_cache_ttl,
            size=settings.user_cache_size,
        )
        await users.start()
        app[AUTH] = AuthService(
            engine=engine,
            broker=broker,
            codes=codes,
            delivery=delivery,
            notify=notify,
            users=users,
            **services,
        )
        app[QR] = QrService(broker=broker, hub=hub, **services)
        app[CERT] = Certification(
            engine=engine, audit=audit, notify=notify, users=users
        )
        app[IDENTITY] = identity = IdentityClient.from_settings(
            settings, clock=app[CLOCK]
        )
        app[ZONE] = Zone(engine=engine, audit=audit, clock=app[CLOCK])
        app[DECLARATIONS] = Declarations(
            engine=engine,
            audit=audit,
            notify=notify,
            cert=app[CERT],
            clock=app[CLOCK],
            storage=LocalStorage.from_settings(settings),
            max_bytes=settings.attachment_max_bytes,
        )
        try:
            async for _ in audit.run():
                yield
        finally:
            await identity.close()
            await notify.close()
            await users.close()
            await broker.close()


def create_app(
    settings: Settings, *, clock: Clock = time.time, migrate: bool | None = None
) -> web.Application:
    """Build the application; nothing connects until it starts."""
    settings.check_production()
    app = web.Application(
        middlewares=[error_middleware, csrf_middleware],
        client_max_size=64 * 1024,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[_MIGRATE] = settings.is_development if migrate is None else migrate
    app[SOCKETS] = weakref.WeakSet()
    app.on_response_prepare.append(security_headers)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(ROOT / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    app.cleanup_ctx.append(backends)

    health.setup(app)
    qr_routes.setup(app)
    ws_routes.setup(app)
    auth_routes.setup(app)
    portal_routes.setup(app)
    notify_routes.setup(app)
    certification_routes.setup(app)
    oauth_routes.setup(app)
    zone_routes.setup(app)
    declaration_routes.setup(app)
    openapi.setup(app)
    app.router.add_static("/static", Path(__file__).parent / "static", name="static")
    return app
