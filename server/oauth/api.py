"""The app's side of third-party login: it runs the provider's authorize step
itself, then trades the code here for one of our bearer tokens."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from server.auth.service import User
from server.auth.web import app_token_response
from server.http import client_ip, parse_body
from server.keys import AUDIT, AUTH, LIMITS, SETTINGS
from server.oauth.errors import IdentityNotLinked
from server.oauth.keys import OAUTH


class AppOAuthCode(BaseModel):
    """Body of POST /api/app/oauth/{provider}: what the provider gave the app."""

    code: str = Field(min_length=1, max_length=512)
    redirect_uri: str = Field(min_length=1, max_length=512)
    code_verifier: str | None = Field(None, min_length=43, max_length=128)
    device: str = Field("", max_length=64)


class AppOAuthLink(BaseModel):
    """Body of POST /api/app/oauth/link: the link token and an account to link."""

    link_token: str = Field(min_length=1, max_length=128)
    account: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)
    device: str = Field("", max_length=64)


async def app_sign_in(request: web.Request) -> web.Response:
    """POST /api/app/oauth/{provider}: a bearer token, or 409 identity_not_linked.

    The 409's details hold a link token for POST /api/app/oauth/link.
    """
    ip = client_ip(request)
    await request.app[LIMITS].hit("app_login", ip)
    body = await parse_body(request, AppOAuthCode)
    service = request.app[OAUTH]
    profile = await service.sign_in_with_code(
        request.match_info["provider"],
        code=body.code,
        redirect_uri=body.redirect_uri,
        verifier=body.code_verifier,
    )

    user = await service.find_user(profile)
    if user is None:
        link_token = await service.hold(profile, next_url="")
        raise IdentityNotLinked(
            details={
                "link_token": link_token,
                "expires_in": int(request.app[SETTINGS].oauth_state_ttl),
                "provider": profile.provider,
                "nickname": profile.nickname,
            }
        )
    return await _token_reply(request, user, body.device, profile.provider)


async def app_link(request: web.Request) -> web.Response:
    """POST /api/app/oauth/link: link the provider account to an account; a token."""
    ip = client_ip(request)
    await request.app[LIMITS].hit("app_login", ip)
    body = await parse_body(request, AppOAuthLink)
    service = request.app[OAUTH]
    await service.pending(body.link_token)

    user = await request.app[AUTH].authenticate(body.account, body.password, ip=ip)
    pending = await service.link(body.link_token, user)
    request.app[AUDIT].record(
        "identity_linked",
        subject=user.username,
        user_id=user.id,
        ip=ip,
        provider=pending.provider,
    )
    return await _token_reply(request, user, body.device, pending.provider)


async def _token_reply(
    request: web.Request, user: User, device: str, provider: str
) -> web.Response:
    """Open an app session and answer as POST /api/app/login does."""
    return await app_token_response(
        request, user, method=f"oauth:{provider}", device=device
    )
