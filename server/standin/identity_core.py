"""What every part of the 一证通 stand-in shares: configuration, keys, sessions.

The stand-in's OpenID Connect endpoints (``identity``) and its account pages
(``identity_accounts``) both need the registered clients, the storage, the
signing key, and the browser's session at the stand-in; they live here so
neither module imports the other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from server.settings import ConfigError
from server.standin import identity_pages as pages
from server.standin.identity_store import Enterprise, IdentityStore

log = logging.getLogger(__name__)

# The one client the stand-in knows unless told otherwise; the portal's settings
# default to the same id and secret, so development needs only the issuer.
DEFAULT_CLIENT_ID = "qrlogin-portal"
DEFAULT_CLIENT_SECRET = "standin-identity-secret"
DEFAULT_CLIENT_NAME = "北京市中小企业公共服务平台"
DEFAULT_REDIRECT_PREFIXES = ("http://127.0.0.1:", "http://localhost:")

SESSION_TTL = 1800.0
SESSION_COOKIE = "yzt_session"


_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("a placeholder that keeps unknown names as slow")


@dataclass(frozen=True, slots=True)
class Client:
    """A relying party registered at the stand-in."""

    client_id: str
    client_secret: str
    name: str
    redirect_prefixes: tuple[str, ...]

    def allows(self, redirect_uri: str) -> bool:
        """Whether redirect_uri is registered: equal to, or under, a prefix.

        A prefix only matches at a boundary (it ends in / or :, or the URI goes
        on with / or ?), and URIs with a user name, a fragment, a backslash or a
        dot segment are refused, so a prefix cannot be stretched to another host.
        """
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        if "@" in parts.netloc or parts.fragment or "\\" in redirect_uri:
            return False
        try:
            _ = parts.port  # raises on a port that is not a number
        except ValueError:
            return False
        if any(segment in (".", "..") for segment in parts.path.split("/")):
            return False
        for prefix in self.redirect_prefixes:
            if redirect_uri == prefix:
                return True
            if redirect_uri.startswith(prefix) and (
                prefix[-1] in "/:" or redirect_uri[len(prefix)] in "/?"
            ):
                return True
        return False


@dataclass(frozen=True, slots=True)
class StandinConfig:
    """The stand-in's issuer URL, its clients and where it keeps its data."""

    issuer: str
    clients: dict[str, Client]
    data: Path | None = None


def _option(value: str | None, name: str, default: str = "") -> str:
    """A command-line value, else the STANDIN_IDENTITY_<name> variable, else default."""
    return value or os.environ.get(f"STANDIN_IDENTITY_{name}") or default


def load_config(
    *,
    host: str,
    port: int,
    data: str | None = None,
    issuer: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    redirect_uris: Iterable[str] | None = None,
) -> StandinConfig:
    """The configuration from command-line values, then STANDIN_IDENTITY_* variables.

    The issuer defaults to http://HOST:PORT, which is only right when HOST is an
    address the portal can reach; behind another name, pass --issuer.
    """
    issuer = _option(issuer, "ISSUER", f"http://{host}:{port}").rstrip("/")
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ConfigError("the stand-in's issuer must be an absolute http(s) URL")
    uris = list(redirect_uris or _option(None, "REDIRECT_URIS").split(","))
    client = Client(
        client_id=_option(client_id, "CLIENT_ID", DEFAULT_CLIENT_ID),
        client_secret=_option(client_secret, "CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
        name=DEFAULT_CLIENT_NAME,
        redirect_prefixes=tuple(u.strip() for u in uris if u.strip())
        or DEFAULT_REDIRECT_PREFIXES,
    )
    path = _option(data, "DATA")
    return StandinConfig(
        issuer=issuer,
        clients={client.client_id: client},
        data=Path(path) if path else None,
    )


class Signer:
    """The stand-in's RSA key: signs ID tokens and publishes its public half."""

    def __init__(self, key: RSAKey) -> None:
        self.key = key

    def sign(self, claims: dict[str, object]) -> str:
        """A compact RS256 JWT of claims, naming the key by its kid."""
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])

    def jwks(self) -> dict[str, object]:
        """The public key set, as /jwks serves it."""
        return dict(KeySet([self.key]).as_dict(private=False))


CONFIG = web.AppKey("identity_config", StandinConfig)
STORE = web.AppKey("identity_store", IdentityStore)
SIGNER = web.AppKey("identity_signer", Signer)


# -- passwords and sessions ---------------------------------------------------------


def password_problem(password: str, again: str | None) -> str | None:
    """Why password cannot be used, or None: 8-64 characters, letters and digits."""
    if not 8 <= len(password) <= 64:
        return "密码长度须为8至64位。"
    if not (re.search(r"[A-Za-z]", password) and re.search(r"\d", password)):
        return "密码须同时包含字母和数字。"
    if again is not None and again != password:
        return "两次输入的密码不一致。"
    return None


async def hash_password(password: str) -> str:
    """An argon2id hash, in a worker thread."""
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether password matches; an unknown account takes as long and says no."""

    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check) and password_hash is not None


async def current_session(request: web.Request) -> tuple[Enterprise, float] | None:
    """(enterprise, auth_time) of the browser's stand-in session, or None."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    return await request.app[STORE].fetch_session(token, now=time.time())


async def start_session(
    request: web.Request, response: web.StreamResponse, enterprise: Enterprise
) -> None:
    """Log the browser in as enterprise, replacing any session it had."""
    store = request.app[STORE]
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await store.delete_session(old)
    token, now = secrets.token_urlsafe(32), time.time()
    await store.insert_session(
        token, enterprise.id, now=now, expires_at=now + SESSION_TTL
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL),
        httponly=True,
        samesite="Lax",
        path="/",
        secure=request.app[CONFIG].issuer.startswith("https://"),
    )
    log.info("enterprise %s logged in at the stand-in", enterprise.login_name)


def safe_next(value: object) -> str:
    """A local path to continue to, or "" for anything that could leave the site."""
    text = str(value or "")
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return ""
    return text[:2048]


def same_origin(request: web.Request) -> bool:
    """Whether a form post comes from the stand-in's own pages (or gives no Origin)."""
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def foreign_post() -> web.Response:
    """The page a cross-site form post gets."""
    return pages.message_page("请求被拒绝", "该表单不是从本站页面提交的。", status=403)


def client_name_of(request: web.Request, next_url: str) -> str:
    """The client an /authorize URL in next_url names, for the login page notice."""
    if not next_url.startswith("/authorize?"):
        return ""
    query = dict(parse_qsl(urlsplit(next_url).query))
    client = request.app[CONFIG].clients.get(query.get("client_id", ""))
    return client.name if client else ""
