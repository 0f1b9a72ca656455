"""A stand-in of 北京市统一身份认证平台 (一证通): an OpenID Connect provider.

Enterprise certification sends a portal user to 一证通 to log in as an enterprise.
Development and tests cannot use the real platform, so this is a small provider of
our own, run as its own process with its own storage (an SQLite file at --data,
or memory): enterprises register with a 统一社会信用代码 checked by server/uscc.py,
log in, reset a forgotten password, and relying parties use the authorization
code flow with PKCE S256 and receive an RS256-signed ID token that names the
enterprise. docs/identity.md says what differs from the real platform.

This module holds the protocol endpoints, the factory and the command; the
account pages are in identity_accounts, the shared state in identity_core, the
HTML in identity_pages and the SQL in identity_store.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import RSAKey

from server.settings import ConfigError, Settings
from server.standin import identity_accounts
from server.standin import identity_pages as pages
from server.standin.identity_core import (
    CONFIG,
    SIGNER,
    STORE,
    Client,
    Signer,
    StandinConfig,
    current_session,
    load_config,
)
from server.standin.identity_store import Grant, IdentityStore

log = logging.getLogger(__name__)

CODE_TTL = 300.0
TOKEN_TTL = 3600.0
ID_TOKEN_TTL = 600.0

CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


class OAuthError(Exception):
    """An RFC 6749 error reply from the token or userinfo endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def response(self) -> web.Response:
        """The JSON reply the caller sees."""
        body = {"error": self.error, "error_description": self.description}
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.status == 401:
            scheme = "Bearer" if self.error == "invalid_token" else "Basic"
            headers["WWW-Authenticate"] = f'{scheme} error="{self.error}"'
        return web.json_response(body, status=self.status, headers=headers)


# -- OpenID Connect endpoints -------------------------------------------------------

AUTHORIZE_FIELDS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
)


async def discovery(request: web.Request) -> web.Response:
    """GET /.well-known/openid-configuration: where everything is."""
    issuer = request.app[CONFIG].issuer
    return web.json_response(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login"],
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "enterprise_name",
                "uscc",
            ],
        }
    )


async def jwks(request: web.Request) -> web.Response:
    """GET /jwks: the public signing keys."""
    return web.json_response(request.app[SIGNER].jwks())


def redirect_back(redirect_uri: str, reply: dict[str, str]) -> web.HTTPFound:
    """The redirect to the client with reply added to its query."""
    parts = urlsplit(redirect_uri)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *reply.items()])
    return web.HTTPFound(urlunsplit(parts._replace(query=query)))


def authorize_problem(params: dict[str, str]) -> tuple[str, str] | None:
    """(error, description) for a request the client got wrong, or None."""
    if params["response_type"] != "code":
        return "unsupported_response_type", "only response_type=code"
    if "openid" not in params["scope"].split():
        return "invalid_scope", "scope must include openid"
    if params["code_challenge_method"] != "S256":
        return "invalid_request", "PKCE with code_challenge_method=S256 is required"
    if not CHALLENGE.fullmatch(params["code_challenge"]):
        return "invalid_request", "code_challenge must be 43 base64url characters"
    if params["prompt"] not in ("", "none", "login"):
        return "invalid_request", "prompt may be none or login"
    return None


async def authorize(request: web.Request) -> web.StreamResponse:
    """GET /authorize: the login page, or straight back with a code.

    A bad client or redirect URI is shown, not redirected: the URI is not
    trusted yet. Anything else wrong goes back to the client as an error.
    """
    params = {k: request.query.get(k, "")[:1024] for k in AUTHORIZE_FIELDS}
    client = request.app[CONFIG].clients.get(params["client_id"])
    if client is None:
        return pages.message_page("无法登录", "未知的应用（client_id）。", status=400)
    if not client.allows(params["redirect_uri"]):
        return pages.message_page(
            "无法登录", "回调地址（redirect_uri）未登记。", status=400
        )
    state = {"state": params["state"]} if params["state"] else {}
    problem = authorize_problem(params)
    if problem:
        raise redirect_back(
            params["redirect_uri"],
            {"error": problem[0], "error_description": problem[1], **state},
        )

    session = await current_session(request)
    if session is None and params["prompt"] == "none":
        raise redirect_back(
            params["redirect_uri"], {"error": "login_required", **state}
        )
    if session is None or params["prompt"] == "login":
        again = {k: v for k, v in params.items() if v and k != "prompt"}
        return pages.login_page(
            next_url="/authorize?" + urlencode(again), client_name=client.name
        )

    enterprise, auth_time = session
    code = secrets.token_urlsafe(32)
    await request.app[STORE].insert_code(
        code,
        Grant(
            client_id=client.client_id,
            redirect_uri=params["redirect_uri"],
            enterprise_id=enterprise.id,
            nonce=params["nonce"],
            challenge=params["code_challenge"],
            scope=params["scope"],
            auth_time=auth_time,
            expires_at=time.time() + CODE_TTL,
        ),
    )
    log.info(
        "code issued to %s for enterprise %s", client.client_id, enterprise.login_name
    )
    raise redirect_back(params["redirect_uri"], {"code": code, **state})


def authenticate_client(request: web.Request, form: dict[str, str]) -> Client:
    """The client from HTTP Basic (form-encoded parts) or the form; else 401."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        if "client_secret" in form:
            raise OAuthError(400, "invalid_request", "one client authentication only")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except ValueError:
            decoded = ""
        name, _, secret = decoded.partition(":")
        name, secret = unquote_plus(name), unquote_plus(secret)
    else:
        name, secret = form.get("client_id", ""), form.get("client_secret", "")
    client = request.app[CONFIG].clients.get(name)
    if client is None or not hmac.compare_digest(
        secret.encode(), client.client_secret.encode()
    ):
        raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
    return client


async def redeem(request: web.Request, client: Client, form: dict[str, str]) -> Grant:
    """Check a token request and spend its code; OAuthError says what is wrong.

    The code is spent before the other checks, so a wrong verifier or redirect
    URI burns it as well; a second use also revokes what the first one got.
    """
    if form.get("grant_type") != "authorization_code":
        raise OAuthError(400, "unsupported_grant_type", "authorization_code only")
    grant, replayed = await request.app[STORE].spend_code(form.get("code", ""))
    if replayed:
        log.warning("code replayed by %s; its tokens are revoked", client.client_id)
    if grant is None or grant.client_id != client.client_id:
        raise OAuthError(400, "invalid_grant", "unknown or used code")
    if grant.expires_at < time.time():
        raise OAuthError(400, "invalid_grant", "expired code")
    if form.get("redirect_uri") != grant.redirect_uri:
        raise OAuthError(400, "invalid_grant", "redirect_uri differs from authorize")
    verifier = form.get("code_verifier", "")
    if not VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
        create_s256_code_challenge(verifier).encode(), grant.challenge.encode()
    ):
        raise OAuthError(400, "invalid_grant", "PKCE verifier does not match")
    return grant


async def token(request: web.Request) -> web.Response:
    """POST /token: a code, once, for an access token and a signed ID token."""
    form = {k: str(v)[:2048] for k, v in (await request.post()).items()}
    store = request.app[STORE]
    try:
        client = authenticate_client(request, form)
        grant = await redeem(request, client, form)
        enterprise = await store.fetch_enterprise(enterprise_id=grant.enterprise_id)
        if enterprise is None:
            raise OAuthError(400, "invalid_grant", "the enterprise no longer exists")
    except OAuthError as err:
        log.warning("token refused: %s", err.error)
        return err.response()

    now = time.time()
    access_token = secrets.token_urlsafe(32)
    await store.insert_token(
        access_token,
        code=form["code"],
        client_id=client.client_id,
        enterprise_id=enterprise.id,
        expires_at=now + TOKEN_TTL,
    )
    claims: dict[str, object] = {
        "iss": request.app[CONFIG].issuer,
        "sub": enterprise.subject,
        "aud": client.client_id,
        "exp": int(now + ID_TOKEN_TTL),
        "iat": int(now),
        "auth_time": int(grant.auth_time),
        "enterprise_name": enterprise.enterprise_name,
        "uscc": enterprise.uscc,
    }
    if grant.nonce:
        claims["nonce"] = grant.nonce
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": int(TOKEN_TTL),
        "scope": grant.scope,
        "id_token": request.app[SIGNER].sign(claims),
    }
    return web.json_response(
        body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


async def userinfo(request: web.Request) -> web.Response:
    """GET or POST /userinfo: the enterprise behind a Bearer access token."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    enterprise = None
    if scheme.lower() == "bearer" and value.strip():
        store = request.app[STORE]
        enterprise = await store.fetch_token(value.strip(), now=time.time())
    if enterprise is None:
        return OAuthError(401, "invalid_token", "unknown or expired token").response()
    return web.json_response(
        {
            "sub": enterprise.subject,
            "enterprise_name": enterprise.enterprise_name,
            "uscc": enterprise.uscc,
        }
    )


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: up."""
    return web.json_response({"ok": True})


async def storage(app: web.Application) -> AsyncIterator[None]:
    """Open the store and load (or make and keep) the signing key; close at the end."""
    store = app[STORE]
    await store.open()
    saved = await store.fetch_signing_key()
    if saved:
        key = RSAKey.import_key(json.loads(saved))
    else:
        key = await asyncio.to_thread(
            lambda: RSAKey.generate_key(
                2048, {"use": "sig", "alg": "RS256"}, private=True, auto_kid=True
            )
        )
        private = json.dumps(key.as_dict(private=True))
        await store.insert_signing_key(key.kid or "", private, now=time.time())
    app[SIGNER] = Signer(key)
    await store.sweep(now=time.time())
    try:
        yield
    finally:
        await store.close()


def create_identity_standin(config: StandinConfig) -> web.Application:
    """The stand-in application; storage opens when it starts."""
    app = web.Application(client_max_size=16 * 1024)
    app[CONFIG] = config
    app[STORE] = IdentityStore(config.data)
    app.cleanup_ctx.append(storage)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks", jwks)
    app.router.add_get("/authorize", authorize)
    app.router.add_post("/token", token)
    app.router.add_route("GET", "/userinfo", userinfo)
    app.router.add_route("POST", "/userinfo", userinfo)
    identity_accounts.setup(app)
    return app


def serve_identity_standin(
    settings: Settings,
    *,
    host: str,
    port: int,
    data: str | None = None,
    issuer: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    redirect_uris: list[str] | None = None,
) -> int:
    """qrlogin standin-identity: run until stopped; never in production mode."""
    if not settings.is_development:
        raise ConfigError("the 一证通 stand-in never runs in production mode")
    config = load_config(
        host=host,
        port=port,
        data=data,
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uris=redirect_uris,
    )
    log.info(
        "一证通 stand-in listening on %s:%d, issuer %s, data %s",
        host,
        port,
        config.issuer,
        config.data or "in memory",
    )
    web.run_app(
        create_identity_standin(config),
        host=host,
        port=port,
        print=None,
        access_log=None,
        shutdown_timeout=2,
    )
    return 0
