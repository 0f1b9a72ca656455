"""Typed application keys: everything the app holds, under one name each."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from server.audit import Audit
from server.broker import Broker
from server.broker.hub import Hub
from server.delivery import Delivery
from server.ratelimit import RateLimits
from server.settings import Settings

if TYPE_CHECKING:  # the services import this module, so name them as strings
    from server.auth.service import AuthService  # noqa: F401
    from server.certification.oidc import IdentityClient  # noqa: F401
    from server.certification.service import Certification  # noqa: F401
    from server.declarations.service import Declarations  # noqa: F401
    from server.notify.service import Notifications  # noqa: F401
    from server.qr.service import QrService  # noqa: F401
    from server.zone.service import Zone  # noqa: F401

Clock = Callable[[], float]

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
BROKER = web.AppKey("broker", Broker)
HUB = web.AppKey("hub", Hub)
AUDIT = web.AppKey("audit", Audit)
LIMITS = web.AppKey("limits", RateLimits)
DELIVERY = web.AppKey("delivery", Delivery)
AUTH = web.AppKey("auth", "AuthService")
QR = web.AppKey("qr", "QrService")
NOTIFY = web.AppKey("notify", "Notifications")
CERT = web.AppKey("cert", "Certification")
IDENTITY = web.AppKey("identity", "IdentityClient")
ZONE = web.AppKey("zone", "Zone")
DECLARATIONS = web.AppKey("declarations", "Declarations")
SOCKETS = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse])
