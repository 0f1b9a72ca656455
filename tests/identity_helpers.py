"""Helpers for tests of the 一证通 stand-in and the portal's OpenID Connect client.

The stand-in runs as its own process, started with `python -m server
standin-identity`, exactly as a developer would; a browser here is an aiohttp
session with its own cookie jar that follows no redirect by itself.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp

from server.certification.oidc import AuthRequest, IdentityClient
from server.uscc import ALPHABET, check_character, organisation_check_character
from tests.processes import run_server_command

REDIRECT_URI = "http://127.0.0.1:8080/certification/callback"
PASSWORD = "Enterprise2026pass"


@contextmanager
def run_standin(
    data: Path, log_path: Path, *, port: int | None = None
) -> Iterator[str]:
    """`python -m server standin-identity` on a free port; yields its base URL."""
    with run_server_command(
        "standin-identity", "--data", str(data), log_path=log_path, port=port
    ) as base:
        yield base


def make_uscc(division: str = "110108") -> str:
    """A fresh valid 统一社会信用代码 for an enterprise (91) in division."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(8))
    first17 = "91" + division + body + organisation_check_character(body)
    return first17 + check_character(first17)


@dataclass(frozen=True, slots=True)
class Account:
    """An enterprise registered at the stand-in by a test."""

    login_name: str
    password: str
    enterprise_name: str
    uscc: str
    contact_phone: str


def new_account() -> Account:
    """Unique details for a registration."""
    tag = secrets.token_hex(4)
    return Account(
        login_name=f"ent_{tag}",
        password=PASSWORD,
        enterprise_name=f"北京测试科技有限公司{tag}",
        uscc=make_uscc(),
        contact_phone="138" + str(secrets.randbelow(10**8)).zfill(8),
    )


def browser() -> aiohttp.ClientSession:
    """A browser: its own cookie jar (IP hosts allowed), no automatic redirects."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def hidden_value(page: str, name: str) -> str:
    """The value of the hidden input called name in page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden {name} in the page"
    return html.unescape(found.group(1))


async def register(base: str, account: Account, **changes: str) -> tuple[int, str, str]:
    """Post the registration form in a fresh browser: (status, Location, body)."""
    form = {
        "enterprise_name": account.enterprise_name,
        "uscc": account.uscc,
        "login_name": account.login_name,
        "password": account.password,
        "password2": account.password,
        "contact_phone": account.contact_phone,
        **changes,
    }
    async with (
        browser() as http,
        http.post(f"{base}/register", data=form, allow_redirects=False) as response,
    ):
        location = response.headers.get("Location", "")
        return response.status, location, await response.text()


async def authorize(
    http: aiohttp.ClientSession,
    base: str,
    url: str,
    account: Account,
    *,
    password: str | None = None,
) -> dict[str, list[str]]:
    """Open url (an /authorize URL), log in on its page, return the callback query."""
    async with http.get(url, allow_redirects=False) as response:
        assert response.status == 200, await response.text()
        page = await response.text()
    assert "法人用户登录" in page and "010-58511090" in page
    form = {
        "login_name": account.login_name,
        "password": password or account.password,
        "next": hidden_value(page, "next"),
    }
    async with http.post(f"{base}/login", data=form, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        back_to = response.headers["Location"]
    assert back_to.startswith("/authorize?")
    async with http.get(base + back_to, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return parse_qs(urlsplit(location).query)


async def code_for(
    client: IdentityClient, base: str, auth: AuthRequest, account: Account
) -> str:
    """Drive the browser side of one login and return the code it brings back."""
    url = await client.authorization_url(
        state=auth.state,
        nonce=auth.nonce,
        code_challenge=auth.code_challenge,
        redirect_uri=REDIRECT_URI,
    )
    async with browser() as http:
        query = await authorize(http, base, url, account)
    assert query["state"] == [auth.state]
    return query["code"][0]
