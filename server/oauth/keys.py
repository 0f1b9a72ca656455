"""Typed application keys of third-party login."""

from __future__ import annotations

from aiohttp import web

from server.oauth.service import OAuthService

OAUTH = web.AppKey("oauth", OAuthService)
