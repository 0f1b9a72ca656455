"""The portal's OpenID Connect client for 北京市统一身份认证平台 (一证通).

Enterprise certification asks 一证通 which enterprise a person can log in as. This
module is the relying party: it reads the provider's discovery document, builds
the authorization URL (code flow, PKCE S256, state and nonce), trades the code for
an ID token, verifies that token against the provider's published keys and hands
back the enterprise it names. Binding that enterprise to a user is someone else's
job; this module only proves who the enterprise is.

Every call has a timeout and a size cap, and every failure is one of the errors in
``server.certification.errors``.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from server.certification.config import IdentityConfig, load_config
from server.certification.errors import (
    IdentityBadReply,
    IdentityDisabled,
    IdentityRefused,
    IdentityUnavailable,
)
from server.http import read_capped
from server.settings import Settings
from server.uscc import BadUscc, check_uscc

log = logging.getLogger(__name__)

Clock = Callable[[], float]

MAX_REPLY = 64 * 1024
LEEWAY = 60
ALGORITHMS = ("RS256",)
# A token signed with a key we have not seen may mean the provider rotated its
# keys; fetch them again, but not more often than this many seconds.
KEY_REFRESH_INTERVAL = 30.0


@dataclass(frozen=True, slots=True)
class EnterpriseClaims:
    """The enterprise 一证通 vouches for: its stable subject, name and USCC."""

    subject: str
    enterprise_name: str
    uscc: str


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """The secrets of one authorization request.

    Keep all three server-side, bound to the browser that started (state, nonce
    and verifier), and hand each to ``exchange`` once.
    """

    state: str
    nonce: str
    code_verifier: str

    @property
    def code_challenge(self) -> str:
        """The S256 challenge the authorization URL carries."""
        return str(create_s256_code_challenge(self.code_verifier))


def new_auth_request() -> AuthRequest:
    """Fresh state, nonce and PKCE verifier, each about 256 random bits."""
    return AuthRequest(
        state=generate_token(43),
        nonce=generate_token(43),
        code_verifier=generate_token(64),
    )


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the discovery document this client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str
    token_auth_methods: tuple[str, ...]


class IdentityClient:
    """Talks to one provider for the portal; one per process is enough.

    The discovery document and the key set are cached for the configured time,
    and fetched again on expiry or when a token names an unknown key.
    """

    def __init__(
        self,
        config: IdentityConfig,
        *,
        http: aiohttp.ClientSession | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.config = config
        self._http = http
        self._owns_http = http is None
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._lock = asyncio.Lock()
        self._metadata: tuple[ProviderMetadata, float] | None = None
        self._keys: tuple[KeySet, float, float] | None = None  # keys, expiry, fetched

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http: aiohttp.ClientSession | None = None,
        clock: Clock = time.time,
    ) -> Self:
        """A client for the configured provider; ConfigError if misconfigured."""
        return cls(load_config(settings), http=http, clock=clock)

    @property
    def enabled(self) -> bool:
        """Whether a provider is configured; if not, every call is IdentityDisabled."""
        return self.config.enabled

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        if self._owns_http and self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> Self:
        """The client itself; leaving the block closes what it opened."""
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Close the HTTP session if this client opened it."""
        await self.close()

    # -- the two steps of a certification ------------------------------------------

    async def authorization_url(
        self,
        *,
        state: str,
        nonce: str,
        code_challenge: str,
        redirect_uri: str,
        prompt: str | None = "login",
    ) -> str:
        """Where to send the browser to log in at 一证通.

        ``prompt=login`` by default: the person must type the enterprise's
        password now, so a 一证通 session left open on a shared computer cannot
        certify someone else's enterprise.
        """
        metadata = await self.metadata()
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if prompt:
            params["prompt"] = prompt
        return _with_query(metadata.authorization_endpoint, params)

    async def exchange(
        self, *, code: str, code_verifier: str, redirect_uri: str, nonce: str
    ) -> EnterpriseClaims:
        """Trade a code for the enterprise it stands for; codes work once.

        The ID token must carry a valid RS256 signature by one of the provider's
        keys, this issuer, this client as audience, an unexpired ``exp``, an
        ``iat`` not in the future and exactly ``nonce``. The USCC is checked
        again here: a provider bug must not put a bad code into a binding.
        """
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {}
        secret = self.config.client_secret.get_secret_value()
        if "client_secret_basic" in metadata.token_auth_methods:
            headers["Authorization"] = _basic_auth(self.config.client_id, secret)
        else:
            form |= {"client_id": self.config.client_id, "client_secret": secret}

        status, body = await self._call(
            "POST", metadata.token_endpoint, data=form, headers=headers
        )
        if status in (400, 401, 403):
            # Only the RFC error code is logged: descriptions may echo the request.
            log.warning(
                "identity provider refused the code: %s",
                str(body.get("error", "?"))[:40],
            )
            raise IdentityRefused("code")
        id_token = body.get("id_token") if status == 200 else None
        if not isinstance(id_token, str) or not id_token:
            log.warning(
                "identity token endpoint answered %d without an ID token", status
            )
            raise IdentityBadReply("token_reply")

        claims = await self._verify(id_token, metadata, nonce=nonce)
        return _enterprise(claims)

    # -- discovery and keys ---------------------------------------------------------

    async def metadata(self, *, refresh: bool = False) -> ProviderMetadata:
        """The provider's discovery document, cached; fetched again when stale."""
        if not self.enabled:
            raise IdentityDisabled()
        cached = self._metadata
        if cached and not refresh and cached[1] > self._clock():
            return cached[0]
        async with self._lock:
            cached = self._metadata
            if cached and not refresh and cached[1] > self._clock():
                return cached[0]
            metadata = await self._discover()
            self._metadata = (metadata, self._clock() + self.config.cache_ttl)
            return metadata

    async def _discover(self) -> ProviderMetadata:
        """Fetch and check the discovery document (OIDC Discovery 1.0, 4.3)."""
        status, body = await self._call("GET", self.config.discovery_url)
        if status != 200:
            log.error("identity discovery answered %d", status)
            raise IdentityBadReply("discovery")
        if body.get("issuer") != self.config.issuer:
            log.error(
                "identity discovery names issuer %r, not the configured %r",
                str(body.get("issuer"))[:200],
                self.config.issuer,
            )
            raise IdentityBadReply("issuer")
        urls = {}
        for name in (
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "userinfo_endpoint",
        ):
            value = body.get(name, "")
            if not isinstance(value, str) or not _is_web_url(value):
                if name == "userinfo_endpoint" and not value:
                    urls[name] = ""
                    continue
                log.error("identity discovery has no usable %s", name)
                raise IdentityBadReply("discovery")
            urls[name] = value
        methods = body.get("token_endpoint_auth_methods_supported")
        if not isinstance(methods, list):
            methods = ["client_secret_basic"]  # the default the spec names
        return ProviderMetadata(
            issuer=self.config.issuer,
            token_auth_methods=tuple(m for m in methods if isinstance(m, str)),
            **urls,
        )

    async def _key_set(self, metadata: ProviderMetadata, *, refresh: bool) -> KeySet:
        """The provider's signing keys, cached like the discovery document."""
        now = self._clock()
        cached = self._keys
        if cached and cached[1] > now and not refresh:
            return cached[0]
        if cached and refresh and now - cached[2] < KEY_REFRESH_INTERVAL:
            return cached[0]
        status, body = await self._call("GET", metadata.jwks_uri)
        try:
            if status != 200:
                raise ValueError(f"status {status}")
            keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
        except (ValueError, TypeError, KeyError, JoseError) as err:
            log.error("identity key set unusable: %s", type(err).__name__)
            raise IdentityBadReply("jwks") from err
        self._keys = (keys, now + self.config.cache_ttl, now)
        return keys

    async def _verify(
        self, id_token: str, metadata: ProviderMetadata, *, nonce: str
    ) -> dict[str, Any]:
        """The ID token's claims once its signature and claims check out."""
        keys = await self._key_set(metadata, refresh=False)
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            except InvalidKeyIdError:
                keys = await self._key_set(metadata, refresh=True)
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        except JoseError as err:
            log.warning("identity ID token refused: %s", type(err).__name__)
            raise IdentityRefused("signature") from err
        except ValueError as err:  # malformed base64 or JSON inside the token
            log.warning("identity ID token unreadable: %s", type(err).__name__)
            raise IdentityRefused("signature") from err

        claims = dict(token.claims)
        self._check_claims(claims, nonce=nonce)
        return claims

    def _check_claims(self, claims: dict[str, Any], *, nonce: str) -> None:
        """OIDC Core 3.1.3.7: issuer, audience, times and nonce."""
        client_id = self.config.client_id
        now = self._clock()
        if claims.get("iss") != self.config.issuer:
            raise _refused("issuer")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if client_id not in audiences:
            raise _refused("audience")
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise _refused("audience")
        expires, issued = _number(claims.get("exp")), _number(claims.get("iat"))
        if expires is None or expires + LEEWAY < now:
            raise _refused("expired")
        if issued is None or issued - LEEWAY > now:
            raise _refused("issued_at")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(
            sent.encode(), nonce.encode()
        ):
            raise _refused("nonce")

    # -- HTTP -------------------------------------------------------------------------

    async def _call(
        self, method: str, url: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        """One request: (status, JSON object); unreachable or 5xx is unavailable."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
            self._owns_http = True
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        where = url.split("?")[0]
        try:
            async with self._http.request(
                method,
                url,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                **kwargs,
            ) as response:
                status = response.status
                raw = await read_capped(response, MAX_REPLY)
        except (aiohttp.ClientError, TimeoutError) as err:
            log.error(
                "identity provider unreachable at %s: %s", where, type(err).__name__
            )
            raise IdentityUnavailable() from err
        if status >= 500:
            log.error("identity provider answered %d at %s", status, where)
            raise IdentityUnavailable()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning(
                "identity provider answered %d at %s without JSON", status, where
            )
            raise IdentityBadReply("not_json")
        return status, body


def _enterprise(claims: dict[str, Any]) -> EnterpriseClaims:
    """The enterprise in verified claims; a missing or bad field is a bad reply."""
    subject = claims.get("sub")
    name = claims.get("enterprise_name")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
        raise IdentityBadReply("subject")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise IdentityBadReply("enterprise_name")
    uscc = claims.get("uscc")
    try:
        code = check_uscc(uscc if isinstance(uscc, str) else "")
    except BadUscc as err:
        log.error("identity provider sent an invalid USCC (%s)", err.rule)
        raise IdentityBadReply("uscc") from err
    return EnterpriseClaims(subject=subject, enterprise_name=name.strip(), uscc=code)


def _refused(reason: str) -> IdentityRefused:
    """An ID-token claim failed; logged with the reason only."""
    log.warning("identity ID token refused: %s", reason)
    return IdentityRefused(reason)


def _number(value: object) -> float | None:
    """value as a float when it is a JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _is_web_url(url: str) -> bool:
    """Whether url is an absolute http(s) URL."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _with_query(url: str, params: dict[str, str]) -> str:
    """url with params added to any query it already has."""
    parts = urlsplit(url)
    query = urlencode(
        [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    )
    return urlunsplit(parts._replace(query=query))


def _basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: both parts form-encoded, then HTTP Basic."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()
