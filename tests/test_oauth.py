"""Third-party login (微信、微博、QQ) against the stand-in provider in its own process.

The browser side is driven by hand: one cookie jar per browser, every redirect
followed explicitly, and the stand-in's consent form posted as a person would.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from server.auth.sessions import hash_token
from server.keys import AUDIT, AUTH, BROKER, ENGINE
from server.oauth import store
from server.oauth.config import parse_providers
from server.oauth.errors import IdentityTaken
from server.settings import ConfigError, load_settings
from server.tables import audit_events, identities
from tests.conftest import free_port
from tests.helpers import PASSWORD, assert_error, make_user
from tests.processes import run_server_command

PROVIDERS = ("wechat", "weibo", "qq")
PKCE = {"wechat": True, "weibo": False, "qq": True}
APP_REDIRECT = "com.example.qrlogin:/oauth/callback"


# -- the stand-in process -----------------------------------------------------------


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m server standin-oauth` on a free port, for the whole module."""
    log_path = tmp_path_factory.mktemp("standin") / "standin.log"
    with run_server_command("standin-oauth", log_path=log_path) as base:
        yield base


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung provider."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def standin_providers(base: str) -> dict[str, dict[str, Any]]:
    """The three providers, pointed at the stand-in."""
    return {
        name: {
            "authorize_url": f"{base}/{name}/authorize",
            "token_url": f"{base}/{name}/token",
            "userinfo_url": f"{base}/{name}/userinfo",
            "client_id": f"standin-{name}",
            "client_secret": f"standin-{name}-secret",
            "pkce": PKCE[name],
            "standin": True,
        }
        for name in PROVIDERS
    }


@pytest.fixture
def tweaks() -> dict[str, Any]:
    """Tests parametrize this: {"only": [...], "<provider>": {...}, "settings": {}}."""
    return {}


@pytest.fixture
def settings_overrides(
    standin: str, silent_port: int, tweaks: dict[str, Any]
) -> dict[str, Any]:
    """Point the app under test at the stand-in, with the test's tweaks."""
    providers = standin_providers(standin)
    places = {
        "REFUSED": f"http://127.0.0.1:{free_port()}",
        "SILENT": f"http://127.0.0.1:{silent_port}",
        "HTML": f"{standin}/",
    }
    for name in PROVIDERS:
        for key, value in tweaks.get(name, {}).items():
            providers[name][key] = places.get(value, value)
    if "only" in tweaks:
        providers = {k: v for k, v in providers.items() if k in tweaks["only"]}
    return {"oauth_providers": json.dumps(providers), **tweaks.get("settings", {})}


# -- a browser ----------------------------------------------------------------------


async def _reply(response: aiohttp.ClientResponse) -> tuple[int, str, str]:
    """(status, Location, body) of a response."""
    return response.status, response.headers.get("Location", ""), await response.text()


class Browser:
    """One browser: its own cookie jar, every redirect followed by the test."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    def url(self, target: str) -> str:
        """Absolute URLs stay; paths go to the app under test."""
        return target if "://" in target else str(self.client.make_url(target))

    async def get(self, target: str) -> tuple[int, str, str]:
        """GET without following: (status, Location, body)."""
        async with self.http.get(self.url(target), allow_redirects=False) as response:
            return await _reply(response)

    async def post(self, target: str, form: dict[str, str]) -> tuple[int, str, str]:
        """POST a form without following: (status, Location, body)."""
        async with self.http.post(
            self.url(target), data=form, allow_redirects=False
        ) as response:
            return await _reply(response)

    def cookie(self, name: str) -> str | None:
        """A cookie's value, or None."""
        for cookie in self.http.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None

    async def user_id(self) -> int | None:
        """The account this browser's session cookie belongs to."""
        token = self.cookie("qrl_session")
        if token is None:
            return None
        user, _ = await self.client.app[AUTH].resolve(token, "web")
        return user.id


@pytest.fixture
async def browser(client: TestClient) -> AsyncIterator[Callable[[], Browser]]:
    """Make browsers; all are closed at the end."""
    made: list[Browser] = []

    def make() -> Browser:
        made.append(Browser(client))
        return made[-1]

    yield make
    for one in made:
        await one.http.close()


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a page, unescaped."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {name: html.unescape(value) for name, value in found}


def with_query(url: str, **changes: str) -> str:
    """url with some query parameters replaced."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


async def consent(
    browser: Browser, authorize_url: str, user: str, decision: str = "allow"
) -> str:
    """At the stand-in: read the consent page, pick user, answer; where it sends us."""
    status, _, page = await browser.get(authorize_url)
    assert status == 200, page
    assert "同意" in page and "拒绝" in page and user in page
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert action is not None
    form = {**hidden_fields(page), "user": user, "decision": decision}
    status, location, body = await browser.post(urljoin(authorize_url, action[1]), form)
    assert status == 302, body
    return location


async def start(browser: Browser, provider: str, next_url: str = "/declare/") -> str:
    """Click 微信/微博/QQ on the login page; the provider URL it leads to."""
    status, location, body = await browser.get(
        f"/oauth/{provider}/start?{urlencode({'next': next_url})}"
    )
    assert status == 302, body
    return location


async def sign_in(
    browser: Browser, provider: str, user: str, next_url: str = "/declare/"
) -> tuple[int, str, str]:
    """The whole round trip; the callback's reply."""
    back = await consent(browser, await start(browser, provider, next_url), user)
    return await browser.get(back)


async def submit(browser: Browser, action: str, **fields: str) -> tuple[int, str, str]:
    """Load the link page and post one of its forms."""
    status, _, page = await browser.get("/oauth/link")
    assert status == 200, page
    csrf = hidden_fields(page)["csrf"]
    return await browser.post(f"/oauth/{action}", {"csrf": csrf, **fields})


def error_code(page: str) -> str:
    """The stable code an error page shows."""
    found = re.search(r"<code>([a-z_]+)</code>", page)
    assert found is not None, page
    return found[1]


async def linked(client: TestClient, provider: str, provider_user_id: str) -> list[int]:
    """The accounts a provider account is linked to (at most one)."""
    query = sa.select(identities.c.user_id).where(
        identities.c.provider == provider,
        identities.c.provider_user_id == provider_user_id,
    )
    async with client.app[ENGINE].connect() as conn:
        return list((await conn.execute(query)).scalars())


# -- pages and configuration ---------------------------------------------------------


async def test_login_pages_offer_the_configured_providers(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    one = browser()
    for page in ("/declare/login", "/m/login"):
        status, _, body = await one.get(page)
        assert status == 200
        for name, label in (("wechat", "微信"), ("weibo", "微博"), ("qq", "QQ")):
            assert f'data-testid="oauth-{name}">{label}</a>' in body
        assert "其他登录方式" in body
    assert "/oauth/wechat/start?next=/m/" in body


@pytest.mark.parametrize("tweaks", [{"only": ["qq"]}])
async def test_only_configured_providers_show(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    status, _, body = await browser().get("/declare/login")
    assert status == 200
    assert 'data-testid="oauth-qq"' in body and "oauth-wechat" not in body
    status, _, body = await browser().get("/oauth/wechat/start")
    assert (status, error_code(body)) == (404, "unknown_provider")


def test_no_providers_means_no_links() -> None:
    assert parse_providers("") == {}


def test_a_bad_provider_setting_is_a_config_error_without_secrets() -> None:
    entry = {
        "authorize_url": "https://a/x",
        "token_url": "https://a/t",
        "userinfo_url": "ftp://a/u",
        "client_id": "id",
        "client_secret": "s3cr3t",
    }
    with pytest.raises(ConfigError, match="http") as caught:
        parse_providers(json.dumps({"wechat": entry}))
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(ConfigError, match="client_id") as caught:
        parse_providers(json.dumps({"qq": {**entry, "client_id": 7}}))
    assert "s3cr3t" not in str(caught.value)
    for bad in ("{", "[]", '{"link": {}}', '{"Bad Name": {}}'):
        with pytest.raises(ConfigError):
            parse_providers(bad)


def test_production_refuses_standin_and_plain_http_providers() -> None:
    production = {
        "mode": "production",
        "database_url": "postgresql://db/app",
        "broker_url": "redis://cache:6379/0",
        "secret_key": "k" * 48,
        "public_url": "https://login.example.org",
    }
    providers = standin_providers("http://127.0.0.1:9100")
    settings = load_settings(**production, oauth_providers=json.dumps(providers))
    with pytest.raises(ConfigError) as caught:
        settings.check_production()
    assert "stand-in providers (qq, wechat, weibo)" in str(caught.value)
    assert "must be https://" in str(caught.value)
    assert "standin-wechat-secret" not in str(caught.value)


# -- browser flows -------------------------------------------------------------------


async def test_first_login_registers_and_the_second_goes_straight_in(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    first = browser()
    status, location, _ = await sign_in(first, "wechat", "wx_alice")
    assert (status, location) == (302, "/oauth/link")
    status, _, page = await first.get("/oauth/link")
    assert "微信" in page and "爱丽丝" in page and "注册新账号" in page

    status, location, body = await submit(
        first, "register", username="alice_wx", password=PASSWORD, phone="", agree="on"
    )
    assert (status, location) == (303, "/declare/"), body
    user_id = await first.user_id()
    assert user_id is not None
    assert await linked(client, "wechat", "wx_alice") == [user_id]
    user = await client.app[AUTH].get_user(user_id)
    assert user is not None and user.display_name == "爱丽丝"

    second = browser()
    status, location, _ = await sign_in(second, "wechat", "wx_alice", next_url="/m/")
    assert (status, location) == (302, "/m/")
    assert await second.user_id() == user_id

    await client.app[AUDIT].flush()
    query = sa.select(audit_events.c.data).where(audit_events.c.event == "login")
    async with client.app[ENGINE].connect() as conn:
        methods = [row["method"] for row in (await conn.execute(query)).scalars()]
    assert methods == ["oauth:wechat", "oauth:wechat"]


async def test_register_form_errors_keep_the_provider_account_waiting(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    await make_user(client, "taken_name")
    one = browser()
    await sign_in(one, "qq", "qq_bob")
    status, _, page = await submit(
        one, "register", username="9bad", password=PASSWORD, agree="on"
    )
    assert status == 422 and "用户名需为" in page
    status, _, page = await submit(
        one, "register", username="taken_name", password=PASSWORD, agree="on"
    )
    assert status == 409 and "该用户名已被使用" in page
    status, _, page = await submit(
        one, "register", username="bob_qq", password=PASSWORD
    )
    assert status == 422 and "用户协议" in page
    status, location, _ = await submit(
        one,
        "register",
        username="bob_qq",
        password=PASSWORD,
        phone="13800138001",
        agree="on",
    )
    assert (status, location) == (303, "/declare/")
    status, _, page = await one.get("/oauth/link")
    assert (status, error_code(page)) == (410, "link_expired")


async def test_linking_an_existing_account(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    alice = await make_user(client, "alice", phone="13800138000")
    one = browser()
    status, location, _ = await sign_in(one, "weibo", "wb_alice", next_url="/m/")
    assert location == "/oauth/link"

    status, _, page = await submit(
        one, "link", account="alice", password="wrong password"
    )
    assert status == 401 and "账号或密码错误" in page
    status, location, _ = await submit(
        one, "link", account="13800138000", password=PASSWORD
    )
    assert (status, location) == (303, "/m/")
    assert await one.user_id() == alice
    assert await linked(client, "weibo", "wb_alice") == [alice]

    again = browser()
    status, location, _ = await sign_in(again, "weibo", "wb_alice")
    assert (status, location) == (302, "/declare/")
    assert await again.user_id() == alice


async def test_a_callback_opened_in_another_browser_is_refused(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    victim, attacker = browser(), browser()
    back = await consent(victim, await start(victim, "wechat"), "wx_bob")
    status, _, page = await attacker.get(back)
    assert (status, error_code(page)) == (403, "oauth_state_missing")
    assert attacker.cookie("qrl_session") is None

    status, location, _ = await victim.get(back)
    assert (status, location) == (302, "/oauth/link")
    status, _, page = await victim.get(back)
    assert (status, error_code(page)) == (403, "oauth_state_missing")


async def test_a_wrong_state_is_refused_and_ends_the_login(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    one = browser()
    back = await consent(one, await start(one, "qq"), "qq_alice")
    status, _, page = await one.get(with_query(back, state="forged"))
    assert (status, error_code(page)) == (403, "oauth_state_mismatch")
    status, _, page = await one.get(back)
    assert (status, error_code(page)) == (403, "oauth_state_missing")


async def test_a_wrong_pkce_verifier_is_refused_by_the_provider(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    one = browser()
    back = await consent(one, await start(one, "wechat"), "wx_alice")
    binding = one.cookie("qrl_oauth")
    assert binding is not None
    key = store.flow_key(hash_token(binding))
    record = json.loads(await client.app[BROKER].get(key) or "{}")
    assert len(record["verifier"]) >= 43
    record["verifier"] = generate_token(64)
    await client.app[BROKER].put(key, json.dumps(record), 60)

    status, _, page = await one.get(back)
    assert (status, error_code(page)) == (502, "provider_rejected")
    assert one.cookie("qrl_session") is None


async def test_declining_at_the_provider_shows_a_clear_page(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    one = browser()
    back = await consent(one, await start(one, "weibo"), "wb_bob", decision="deny")
    assert "error=access_denied" in back
    status, _, page = await one.get(back)
    assert (status, error_code(page)) == (403, "oauth_denied")
    assert "declined" in page and one.cookie("qrl_session") is None

    # WeChat declines by sending back the state alone, with no error and no code.
    bare = await consent(one, await start(one, "wechat"), "wx_bob", decision="deny")
    parts = urlsplit(bare)
    state_only = urlencode({"state": parse_qs(parts.query)["state"][0]})
    status, _, page = await one.get(urlunsplit(parts._replace(query=state_only)))
    assert (status, error_code(page)) == (403, "oauth_denied")


@pytest.mark.parametrize(
    "tweaks",
    [
        {"wechat": {"token_url": "REFUSED"}},
        {"wechat": {"token_url": "SILENT"}, "settings": {"oauth_http_timeout": 0.3}},
        {"wechat": {"userinfo_url": "HTML"}},
    ],
    ids=["refused", "hung", "garbled"],
)
async def test_a_provider_that_is_down_or_garbled_is_a_clear_error(
    client: TestClient, browser: Callable[[], Browser], tweaks: dict[str, Any]
) -> None:
    one = browser()
    back = await consent(one, await start(one, "wechat"), "wx_alice")
    status, _, page = await one.get(back)
    if "userinfo_url" in tweaks["wechat"]:
        assert (status, error_code(page)) == (502, "provider_bad_reply")
    else:
        assert (status, error_code(page)) == (503, "provider_unavailable")
    assert one.cookie("qrl_session") is None


async def test_two_browsers_linking_one_identity_at_once_one_wins(
    client: TestClient, browser: Callable[[], Browser]
) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    first, second, late = browser(), browser(), browser()
    for one in (first, second, late):
        status, location, _ = await sign_in(one, "wechat", "wx_carol")
        assert location == "/oauth/link"

    replies = await asyncio.gather(
        submit(first, "link", account="alice", password=PASSWORD),
        submit(second, "link", account="bob", password=PASSWORD),
    )
    statuses = sorted(status for status, _, _ in replies)
    assert statuses == [303, 409], replies
    loser = next(page for status, _, page in replies if status == 409)
    assert error_code(loser) == "identity_taken"
    winners = await linked(client, "wechat", "wx_carol")
    assert len(winners) == 1 and winners[0] in (alice, bob)

    # Long after the race, the unique index still refuses a second link.
    status, _, page = await submit(late, "link", account="bob", password=PASSWORD)
    assert (status, error_code(page)) == (409, "identity_taken")
    status, _, page = await late.get("/oauth/link")
    assert (status, error_code(page)) == (410, "link_expired")


async def test_the_unique_index_refuses_a_second_link(client: TestClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    values = {"provider": "qq", "provider_user_id": "qq_alice", "display_name": ""}
    async with client.app[ENGINE].begin() as conn:
        await store.insert_identity(conn, user_id=alice, **values)
    with pytest.raises(IdentityTaken):
        async with client.app[ENGINE].begin() as conn:
            await store.insert_identity(conn, user_id=bob, **values)


# -- the app API ---------------------------------------------------------------------


def app_authorize_url(standin: str, provider: str, challenge: str) -> str:
    """The authorize URL the phone app opens itself."""
    query = {
        "response_type": "code",
        "client_id": f"standin-{provider}",
        "redirect_uri": APP_REDIRECT,
        "state": generate_token(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{standin}/{provider}/authorize?{urlencode(query)}"


@pytest.fixture
def app_code(
    standin: str, browser: Callable[[], Browser]
) -> Callable[[str, str], Awaitable[tuple[str, str]]]:
    """Run the authorize step as the app does: (code, verifier)."""

    async def run(provider: str, user: str) -> tuple[str, str]:
        verifier = generate_token(64)
        url = app_authorize_url(standin, provider, create_s256_code_challenge(verifier))
        back = await consent(browser(), url, user)
        assert back.startswith(APP_REDIRECT)
        return parse_qs(urlsplit(back).query)["code"][0], verifier

    return run


async def test_the_app_links_once_then_signs_straight_in(
    client: TestClient,
    app_code: Callable[[str, str], Awaitable[tuple[str, str]]],
    browser: Callable[[], Browser],
) -> None:
    await make_user(client, "alice")
    app = browser().http
    url = client.make_url

    code, verifier = await app_code("qq", "qq_alice")
    body = {"code": code, "code_verifier": verifier, "redirect_uri": APP_REDIRECT}
    async with app.post(url("/api/app/oauth/qq"), json=body) as response:
        assert response.status == 409
        reply = await response.json()
    assert_error(reply, "identity_not_linked")
    details = reply["error"]["details"]
    assert details["provider"] == "qq" and details["nickname"] == "爱丽丝QQ"

    link = {"link_token": details["link_token"], "account": "alice", "password": "nope"}
    async with app.post(url("/api/app/oauth/link"), json=link) as response:
        assert response.status == 401
    link["password"] = PASSWORD
    async with app.post(url("/api/app/oauth/link"), json=link) as response:
        assert response.status == 200, await response.text()
        token = (await response.json())["token"]
    async with app.post(url("/api/app/oauth/link"), json=link) as response:
        assert_error(await response.json(), "link_expired")
    headers = {"Authorization": f"Bearer {token}"}
    async with app.get(url("/api/app/me"), headers=headers) as response:
        assert (await response.json())["username"] == "alice"

    code, verifier = await app_code("qq", "qq_alice")
    body = {"code": code, "code_verifier": verifier, "redirect_uri": APP_REDIRECT}
    async with app.post(url("/api/app/oauth/qq"), json=body) as response:
        assert response.status == 200
        reply = await response.json()
    assert reply["token_type"] == "bearer" and reply["user"]["username"] == "alice"


async def test_the_app_gets_clear_errors_from_the_provider(
    client: TestClient,
    app_code: Callable[[str, str], Awaitable[tuple[str, str]]],
    browser: Callable[[], Browser],
) -> None:
    app = browser().http
    url = client.make_url

    code, verifier = await app_code("wechat", "wx_bob")
    wrong = {
        "code": code,
        "code_verifier": generate_token(64),
        "redirect_uri": APP_REDIRECT,
    }
    async with app.post(url("/api/app/oauth/wechat"), json=wrong) as response:
        assert response.status == 502
        assert_error(await response.json(), "provider_rejected")
    right = {**wrong, "code_verifier": verifier}
    async with app.post(url("/api/app/oauth/wechat"), json=right) as response:
        assert_error(await response.json(), "provider_rejected")  # the code is spent

    async with app.post(url("/api/app/oauth/github"), json=right) as response:
        assert response.status == 404
        assert_error(await response.json(), "unknown_provider")
    async with app.post(url("/api/app/oauth/wechat"), json={"code": ""}) as response:
        assert_error(await response.json(), "invalid")
