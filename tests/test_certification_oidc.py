"""The portal's 一证通 client refuses what it must: forged tokens, bad replies, outages.

A "mirror" provider runs in the test process in front of the stand-in process:
it passes the login through to the stand-in and then hands the client an ID token
it has tampered with, or re-signed with its own key after changing claims, so each
check of the client is seen failing on its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from server.certification.config import load_config, production_problems
from server.certification.errors import (
    IdentityBadReply,
    IdentityDisabled,
    IdentityRefused,
    IdentityUnavailable,
)
from server.certification.oidc import IdentityClient, new_auth_request
from server.settings import ConfigError, load_settings
from server.standin.identity_core import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.conftest import free_port
from tests.identity_helpers import (
    REDIRECT_URI,
    Account,
    code_for,
    new_account,
    register,
    run_standin,
)

pytestmark = pytest.mark.slow

Edit = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One stand-in process for the module."""
    folder = tmp_path_factory.mktemp("identity")
    with run_standin(folder / "yzt.db", folder / "standin.log") as base:
        yield base


@pytest.fixture
async def account(standin: str) -> Account:
    """A freshly registered enterprise."""
    details = new_account()
    status, _, body = await register(standin, details)
    assert status == 303, body
    return details


def _b64(data: bytes) -> str:
    """base64url without padding, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes of a base64url segment without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Mirror:
    """A provider that logs in through the stand-in and lies about the result."""

    def __init__(self, standin: str, key: RSAKey) -> None:
        self.standin = standin
        self.key = key
        self.mode = "untouched"
        self.edit: Edit = lambda claims: claims
        self.base = ""

    def app(self) -> web.Application:
        """The mirror's routes."""
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_post("/token", self.token)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        """The stand-in's document, with the mirror as issuer, token and keys."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.standin}/.well-known/openid-configuration") as response,
        ):
            document = await response.json()
        document |= {
            "issuer": self.base,
            "token_endpoint": f"{self.base}/token",
            "jwks_uri": f"{self.base}/jwks",
        }
        return web.json_response(document)

    async def jwks(self, request: web.Request) -> web.Response:
        """The mirror's own key when it re-signs, else the stand-in's keys."""
        if self.mode == "own_key":
            return web.json_response(KeySet([self.key]).as_dict(private=False))
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.standin}/jwks") as response,
        ):
            return web.json_response(await response.json())

    async def token(self, request: web.Request) -> web.Response:
        """Forward to the stand-in, then change the ID token as the mode says."""
        form = dict(await request.post())
        headers = {"Authorization": request.headers.get("Authorization", "")}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.standin}/token", data=form, headers=headers) as response,
        ):
            body = await response.json()
            if response.status != 200:
                return web.json_response(body, status=response.status)
        body["id_token"] = self.change(body["id_token"])
        if self.mode == "no_id_token":
            del body["id_token"]
        return web.json_response(body)

    def change(self, token: str) -> str:
        """The token as the current mode hands it out."""
        header, payload, signature = token.split(".")
        claims = json.loads(_unb64(payload))
        if self.mode == "payload":
            claims["enterprise_name"] = "冒名企业"
            return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
        if self.mode == "alg_none":
            none = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            return f"{none}.{payload}."
        if self.mode in ("own_key", "foreign_key"):
            claims = self.edit({**claims, "iss": self.base})
            kid = self.key.kid
            if self.mode == "foreign_key":  # claim to be the stand-in's key
                kid = json.loads(_unb64(header))["kid"]
            return jwt.encode(
                {"alg": "RS256", "kid": kid}, claims, self.key, algorithms=["RS256"]
            )
        return token


@pytest.fixture(scope="module")
def mirror_key() -> RSAKey:
    """One RSA key for the mirror (made once: it takes a moment)."""
    return RSAKey.generate_key(2048, {"use": "sig", "alg": "RS256"}, auto_kid=True)


@pytest.fixture
async def mirror(standin: str, mirror_key: RSAKey) -> AsyncIterator[Mirror]:
    """A running mirror in front of the stand-in."""
    fake = Mirror(standin, mirror_key)
    server = TestServer(fake.app(), host="127.0.0.1", port=free_port())
    await server.start_server()
    fake.base = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        await server.close()


async def login_through(mirror: Mirror, account: Account) -> Exception | None:
    """One certification through the mirror: the client's error, or None."""
    settings = load_settings(identity_issuer=mirror.base, identity_standin=True)
    async with IdentityClient.from_settings(settings) as client:
        auth = new_auth_request()
        code = await code_for(client, mirror.standin, auth, account)
        try:
            await client.exchange(
                code=code,
                code_verifier=auth.code_verifier,
                redirect_uri=REDIRECT_URI,
                nonce=auth.nonce,
            )
        except (IdentityRefused, IdentityBadReply) as err:
            return err
    return None


# -- forged and bent ID tokens -------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("payload", "signature"),
        ("alg_none", "signature"),
        ("foreign_key", "signature"),
        ("untouched", "issuer"),
    ],
)
async def test_tampered_id_token_is_refused(
    mirror: Mirror, account: Account, mode: str, reason: str
) -> None:
    """Changed claims, no signature, another key under the same kid, wrong issuer."""
    mirror.mode = mode
    error = await login_through(mirror, account)
    assert isinstance(error, IdentityRefused), error
    assert (error.status, error.code, error.reason) == (400, "identity_refused", reason)


@pytest.mark.parametrize(
    ("edit", "kind", "reason"),
    [
        (lambda c: {**c, "aud": "another-client"}, IdentityRefused, "audience"),
        (lambda c: {**c, "aud": [c["aud"], "x"]}, IdentityRefused, "audience"),
        (lambda c: {**c, "exp": c["iat"] - 3600}, IdentityRefused, "expired"),
        (lambda c: {**c, "iat": c["iat"] + 3600}, IdentityRefused, "issued_at"),
        (
            lambda c: {k: v for k, v in c.items() if k != "nonce"},
            IdentityRefused,
            "nonce",
        ),
        (lambda c: {**c, "uscc": c["uscc"][:17] + "0"}, IdentityBadReply, "uscc"),
        (lambda c: {**c, "enterprise_name": ""}, IdentityBadReply, "enterprise_name"),
    ],
)
async def test_each_claim_is_checked(
    mirror: Mirror, account: Account, edit: Edit, kind: type[Exception], reason: str
) -> None:
    """Re-signed by a key the client trusts, so only the claim itself can fail."""
    mirror.mode, mirror.edit = "own_key", edit
    if reason == "uscc" and account.uscc.endswith("0"):
        mirror.edit = lambda c: {**c, "uscc": c["uscc"][:17] + "1"}
    error = await login_through(mirror, account)
    assert isinstance(error, kind) and error.reason == reason, error  # type: ignore[attr-defined]


async def test_resigned_token_with_good_claims_is_accepted(
    mirror: Mirror, account: Account
) -> None:
    """The mirror's own key, served as the issuer's keys: the control case."""
    mirror.mode = "own_key"
    assert await login_through(mirror, account) is None


async def test_token_reply_without_id_token_is_a_bad_reply(
    mirror: Mirror, account: Account
) -> None:
    mirror.mode = "no_id_token"
    error = await login_through(mirror, account)
    assert isinstance(error, IdentityBadReply) and error.status == 502
    assert error.reason == "token_reply"


# -- the provider down or confused ---------------------------------------------------


async def test_stand_in_down_is_identity_unavailable() -> None:
    settings = load_settings(
        identity_issuer=f"http://127.0.0.1:{free_port()}", identity_standin=True
    )
    async with IdentityClient.from_settings(settings) as client:
        with pytest.raises(IdentityUnavailable) as caught:
            await client.authorization_url(
                state="s", nonce="n", code_challenge="c", redirect_uri=REDIRECT_URI
            )
    assert (caught.value.status, caught.value.code) == (503, "identity_unavailable")


async def test_a_silent_provider_times_out_as_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        port = sock.getsockname()[1]
        settings = load_settings(
            identity_issuer=f"http://127.0.0.1:{port}", identity_http_timeout=0.3
        )
        async with IdentityClient.from_settings(settings) as client:
            started = asyncio.get_running_loop().time()
            with pytest.raises(IdentityUnavailable):
                await client.metadata()
            assert asyncio.get_running_loop().time() - started < 3


async def test_html_instead_of_discovery_is_a_bad_reply(standin: str) -> None:
    settings = load_settings(identity_issuer=f"{standin}/login")
    async with IdentityClient.from_settings(settings) as client:
        with pytest.raises(IdentityBadReply) as caught:
            await client.metadata()
    assert caught.value.status == 502


async def test_discovery_for_another_issuer_is_a_bad_reply(standin: str) -> None:
    settings = load_settings(identity_issuer=standin + "/")
    async with IdentityClient.from_settings(settings) as client:
        with pytest.raises(IdentityBadReply) as caught:
            await client.metadata()
    assert caught.value.reason == "issuer"


async def test_discovery_is_cached(standin: str) -> None:
    now = [1000.0]
    settings = load_settings(identity_issuer=standin, identity_cache_ttl=60)
    async with IdentityClient.from_settings(settings, clock=lambda: now[0]) as client:
        first = await client.metadata()
        assert await client.metadata() is first
        now[0] += 61
        assert await client.metadata() is not first


async def test_no_issuer_means_certification_is_off() -> None:
    async with IdentityClient.from_settings(load_settings()) as client:
        assert not client.enabled
        with pytest.raises(IdentityDisabled) as caught:
            await client.metadata()
    assert (caught.value.status, caught.value.code) == (404, "identity_disabled")


# -- settings ------------------------------------------------------------------------


def test_settings_default_to_the_stand_in_client() -> None:
    settings = load_settings()
    assert settings.identity_client_id == DEFAULT_CLIENT_ID
    assert settings.identity_client_secret.get_secret_value() == DEFAULT_CLIENT_SECRET


def test_a_bad_issuer_is_a_config_error() -> None:
    for issuer in ("yzt.beijing.gov.cn", "ftp://x", "https://x/?a=1"):
        with pytest.raises(ConfigError, match="QRLOGIN_IDENTITY_ISSUER"):
            load_config(load_settings(identity_issuer=issuer))


def test_production_refuses_the_stand_in_identity_provider() -> None:
    production = {
        "mode": "production",
        "database_url": "postgresql://db/app",
        "broker_url": "redis://cache:6379/0",
        "secret_key": "k" * 48,
        "public_url": "https://login.example.org",
        "sms_gateway_url": "https://sms.example.org/send",
        "smtp_host": "smtp.example.org",
    }
    load_settings(**production).check_production()  # certification off: fine

    standin = load_settings(
        **production, identity_issuer="http://127.0.0.1:9200", identity_standin=True
    )
    with pytest.raises(ConfigError) as caught:
        standin.check_production()
    message = str(caught.value)
    assert "QRLOGIN_IDENTITY_STANDIN" in message and "https://" in message
    assert "QRLOGIN_IDENTITY_CLIENT_SECRET" in message
    assert DEFAULT_CLIENT_SECRET not in message, "secrets stay out of messages"

    real = load_settings(
        **production,
        identity_issuer="https://yzt.example.gov.cn/oidc",
        identity_client_secret="s" * 40,
    )
    assert production_problems(real) == []
    real.check_production()


def test_production_problems_are_empty_when_certification_is_off(
    tmp_path: Path,
) -> None:
    assert production_problems(load_settings(mode="production")) == []
