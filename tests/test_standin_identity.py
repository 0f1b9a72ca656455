"""The 一证通 stand-in in its own process, and the full code flow through the client.

Each test registers its own enterprise, so the tests share one stand-in process
without sharing accounts.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from server.certification.errors import IdentityRefused
from server.certification.oidc import IdentityClient, new_auth_request
from server.settings import load_settings
from tests.identity_helpers import (
    REDIRECT_URI,
    Account,
    authorize,
    browser,
    code_for,
    hidden_value,
    new_account,
    register,
    run_standin,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def standin_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The stand-in's data file and log, kept for the whole module."""
    folder = tmp_path_factory.mktemp("identity")
    return folder / "yzt.db", folder / "standin.log"


@pytest.fixture(scope="module")
def standin(standin_files: tuple[Path, Path]) -> Iterator[str]:
    """One stand-in process for the module."""
    with run_standin(*standin_files) as base:
        yield base


@pytest.fixture
async def client(standin: str) -> AsyncIterator[IdentityClient]:
    """The portal's client, configured for the stand-in by settings."""
    settings = load_settings(
        identity_issuer=standin, identity_standin=True, identity_http_timeout=5
    )
    async with IdentityClient.from_settings(settings) as identity:
        yield identity


@pytest.fixture
async def account(standin: str) -> Account:
    """A freshly registered enterprise."""
    details = new_account()
    status, location, body = await register(standin, details)
    assert (status, location) == (303, "/account"), body
    return details


# -- discovery and registration ------------------------------------------------------


async def test_discovery_names_the_endpoints_and_keys(
    standin: str, client: IdentityClient
) -> None:
    metadata = await client.metadata()
    assert metadata.issuer == standin
    assert metadata.authorization_endpoint == f"{standin}/authorize"
    assert metadata.token_endpoint == f"{standin}/token"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{standin}/.well-known/openid-configuration") as response:
            document = await response.json()
        async with http.get(metadata.jwks_uri) as response:
            keys = (await response.json())["keys"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert [(k["kty"], k["alg"], k["use"]) for k in keys] == [("RSA", "RS256", "sig")]
    assert all("d" not in key and "p" not in key for key in keys), "private parts"


async def test_registration_with_a_bad_uscc_shows_the_error(standin: str) -> None:
    details = new_account()
    bad = details.uscc[:17] + ("0" if details.uscc[17] != "0" else "1")
    status, _, page = await register(standin, details, uscc=bad)
    assert status == 422
    assert "统一社会信用代码的校验码（第18位）不正确" in page
    assert details.enterprise_name in page, "typed values are kept"
    assert details.password not in page, "passwords are never echoed"

    status, _, page = await register(standin, details, uscc="9111000080210043")
    assert status == 422 and "统一社会信用代码应为18位" in page


async def test_registration_checks_every_field(standin: str) -> None:
    status, _, page = await register(
        standin,
        new_account(),
        enterprise_name="",
        login_name="1x",
        password="short",
        password2="short",
        contact_phone="12345",
    )
    assert status == 422
    for message in (
        "请填写企业名称",
        "登录名须为4至32位",
        "密码长度须为8至64位",
        "请填写11位手机号",
    ):
        assert message in page


async def test_register_then_see_the_account(standin: str) -> None:
    details = new_account()
    typed = details.uscc.lower()[:9] + " " + details.uscc.lower()[9:]
    async with browser() as http:
        form = {
            "enterprise_name": details.enterprise_name,
            "uscc": typed,
            "login_name": details.login_name,
            "password": details.password,
            "password2": details.password,
            "contact_phone": details.contact_phone,
        }
        async with http.post(
            f"{standin}/register", data=form, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with http.get(f"{standin}/account", allow_redirects=False) as response:
            page = await response.text()
    assert details.enterprise_name in page and details.uscc in page, "stored normalised"


async def test_one_account_per_uscc_and_per_login_name(
    standin: str, account: Account
) -> None:
    again = new_account()
    status, _, page = await register(standin, again, uscc=account.uscc)
    assert status == 409 and "该统一社会信用代码已注册一证通账号" in page
    status, _, page = await register(
        standin, again, login_name=account.login_name.upper()
    )
    assert status == 409 and "该登录名已被使用" in page


# -- the code flow -------------------------------------------------------------------


async def test_code_flow_returns_the_enterprise(
    standin: str, client: IdentityClient, account: Account
) -> None:
    auth = new_auth_request()
    code = await code_for(client, standin, auth, account)
    claims = await client.exchange(
        code=code,
        code_verifier=auth.code_verifier,
        redirect_uri=REDIRECT_URI,
        nonce=auth.nonce,
    )
    assert claims.enterprise_name == account.enterprise_name
    assert claims.uscc == account.uscc
    assert len(claims.subject) == 32

    again = new_auth_request()
    code = await code_for(client, standin, again, account)
    second = await client.exchange(
        code=code,
        code_verifier=again.code_verifier,
        redirect_uri=REDIRECT_URI,
        nonce=again.nonce,
    )
    assert second == claims, "the subject is stable across logins"


async def test_wrong_password_stays_on_the_login_page(
    standin: str, client: IdentityClient, account: Account
) -> None:
    auth = new_auth_request()
    url = await client.authorization_url(
        state=auth.state,
        nonce=auth.nonce,
        code_challenge=auth.code_challenge,
        redirect_uri=REDIRECT_URI,
    )
    async with browser() as http:
        async with http.get(url) as response:
            next_url = hidden_value(await response.text(), "next")
        form = {
            "login_name": account.login_name,
            "password": "Wrong-password-1",
            "next": next_url,
        }
        async with http.post(
            f"{standin}/login", data=form, allow_redirects=False
        ) as response:
            page = await response.text()
    assert response.status == 401 and "登录名或密码错误" in page
    assert "北京市中小企业公共服务平台" in page, "the client is still named"


async def test_wrong_pkce_verifier_is_refused_and_burns_the_code(
    standin: str, client: IdentityClient, account: Account
) -> None:
    auth = new_auth_request()
    code = await code_for(client, standin, auth, account)
    with pytest.raises(IdentityRefused) as caught:
        await client.exchange(
            code=code,
            code_verifier=new_auth_request().code_verifier,
            redirect_uri=REDIRECT_URI,
            nonce=auth.nonce,
        )
    assert (caught.value.status, caught.value.reason) == (400, "code")
    with pytest.raises(IdentityRefused):
        await client.exchange(
            code=code,
            code_verifier=auth.code_verifier,
            redirect_uri=REDIRECT_URI,
            nonce=auth.nonce,
        )


async def test_a_code_works_once(
    standin: str, client: IdentityClient, account: Account
) -> None:
    auth = new_auth_request()
    code = await code_for(client, standin, auth, account)
    values = {
        "code": code,
        "code_verifier": auth.code_verifier,
        "redirect_uri": REDIRECT_URI,
        "nonce": auth.nonce,
    }
    await client.exchange(**values)
    with pytest.raises(IdentityRefused) as caught:
        await client.exchange(**values)
    assert caught.value.code == "identity_refused"


async def test_redirect_uri_must_match_the_authorize_request(
    standin: str, client: IdentityClient, account: Account
) -> None:
    auth = new_auth_request()
    code = await code_for(client, standin, auth, account)
    with pytest.raises(IdentityRefused):
        await client.exchange(
            code=code,
            code_verifier=auth.code_verifier,
            redirect_uri=REDIRECT_URI + "/other",
            nonce=auth.nonce,
        )


async def test_nonce_mismatch_is_refused_by_the_client(
    standin: str, client: IdentityClient, account: Account
) -> None:
    auth = new_auth_request()
    code = await code_for(client, standin, auth, account)
    with pytest.raises(IdentityRefused) as caught:
        await client.exchange(
            code=code,
            code_verifier=auth.code_verifier,
            redirect_uri=REDIRECT_URI,
            nonce=new_auth_request().nonce,
        )
    assert caught.value.reason == "nonce"


async def test_token_endpoint_with_client_secret_post_and_userinfo(
    standin: str, account: Account
) -> None:
    """The raw protocol: a form-authenticated client and a Bearer userinfo call."""
    auth = new_auth_request()
    query = {
        "response_type": "code",
        "client_id": "qrlogin-portal",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": auth.state,
        "nonce": auth.nonce,
        "code_challenge": auth.code_challenge,
        "code_challenge_method": "S256",
    }
    async with browser() as http:
        back = await authorize(
            http, standin, f"{standin}/authorize?{urlencode(query)}", account
        )
        form = {
            "grant_type": "authorization_code",
            "code": back["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": auth.code_verifier,
            "client_id": "qrlogin-portal",
            "client_secret": "wrong",
        }
        async with http.post(f"{standin}/token", data=form) as response:
            assert response.status == 401
            assert (await response.json())["error"] == "invalid_client"
        form["client_secret"] = "standin-identity-secret"
        async with http.post(f"{standin}/token", data=form) as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            tokens = await response.json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        async with http.get(f"{standin}/userinfo", headers=bearer) as response:
            info = await response.json()
        async with http.get(
            f"{standin}/userinfo", headers={"Authorization": "Bearer nope"}
        ) as response:
            assert response.status == 401

        form["client_secret"] = "standin-identity-secret"
        async with http.post(f"{standin}/token", data=form) as response:
            assert response.status == 400, "the code is spent"
        async with http.get(f"{standin}/userinfo", headers=bearer) as response:
            assert response.status == 401, "a replayed code revokes its token"

    assert info == {
        "sub": info["sub"],
        "enterprise_name": account.enterprise_name,
        "uscc": account.uscc,
    }
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["nonce"] == auth.nonce and claims["aud"] == "qrlogin-portal"
    assert claims["iss"] == standin and claims["exp"] > claims["iat"]


# -- what /authorize refuses ---------------------------------------------------------


def authorize_query(**changes: str) -> str:
    """An /authorize query string with changes applied ("" drops a field)."""
    query = {
        "response_type": "code",
        "client_id": "qrlogin-portal",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": create_s256_code_challenge("v" * 43),
        "code_challenge_method": "S256",
        **changes,
    }
    return urlencode({k: v for k, v in query.items() if v})


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"client_id": "someone-else"}, 400, "未知的应用"),
        ({"redirect_uri": "https://evil.example/cb"}, 400, "回调地址"),
        ({"redirect_uri": "http://127.0.0.1:8080@evil.example/cb"}, 400, "回调地址"),
        ({"code_challenge": ""}, 302, "invalid_request"),
        ({"code_challenge_method": "plain"}, 302, "invalid_request"),
        ({"scope": "profile"}, 302, "invalid_scope"),
        ({"response_type": "token"}, 302, "unsupported_response_type"),
        ({"prompt": "none"}, 302, "login_required"),
    ],
)
async def test_authorize_refuses_bad_requests(
    standin: str, changes: dict[str, str], status: int, error: str
) -> None:
    async with (
        browser() as http,
        http.get(
            f"{standin}/authorize?{authorize_query(**changes)}", allow_redirects=False
        ) as response,
    ):
        body = await response.text()
        location = response.headers.get("Location", "")
    assert response.status == status
    if status == 302:
        query = parse_qs(urlsplit(location).query)
        assert location.startswith(REDIRECT_URI)
        assert query["error"] == [error] and query["state"] == ["s1"]
    else:
        assert error in body


async def test_a_logged_in_browser_gets_a_code_without_the_login_page(
    standin: str, account: Account
) -> None:
    """Single sign-on at the stand-in, unless the client asks for prompt=login."""
    async with browser() as http:
        await authorize(
            http, standin, f"{standin}/authorize?{authorize_query()}", account
        )
        async with http.get(
            f"{standin}/authorize?{authorize_query()}", allow_redirects=False
        ) as response:
            assert response.status == 302 and "code=" in response.headers["Location"]
        async with http.get(
            f"{standin}/authorize?{authorize_query(prompt='login')}",
            allow_redirects=False,
        ) as response:
            assert response.status == 200 and "法人用户登录" in await response.text()


# -- forgotten password --------------------------------------------------------------


async def test_forgotten_password_can_be_reset(standin: str, account: Account) -> None:
    proof = {
        "login_name": account.login_name,
        "uscc": account.uscc,
        "contact_phone": account.contact_phone,
    }
    new_password = "Brand-new-2026"
    async with browser() as http:
        async with http.get(f"{standin}/forgot") as response:
            page = await response.text()
        assert "替身服务说明" in page and "010-58511090" in page

        wrong = {**proof, "contact_phone": "13000000000"}
        async with http.post(f"{standin}/forgot", data=wrong) as response:
            assert response.status == 422
            assert "不匹配" in await response.text()
        async with http.post(f"{standin}/forgot", data=proof) as response:
            assert response.status == 200
            token = hidden_value(await response.text(), "token")

        mismatched = {"token": token, "password": new_password, "password2": "other"}
        async with http.post(f"{standin}/forgot/reset", data=mismatched) as response:
            assert response.status == 422
        done = {"token": token, "password": new_password, "password2": new_password}
        async with http.post(f"{standin}/forgot/reset", data=done) as response:
            assert response.status == 200 and "密码已重置" in await response.text()
        async with http.post(f"{standin}/forgot/reset", data=done) as response:
            assert response.status == 410, "a reset token works once"

        for password, status in ((account.password, 401), (new_password, 303)):
            form = {"login_name": account.login_name, "password": password}
            async with http.post(
                f"{standin}/login", data=form, allow_redirects=False
            ) as response:
                assert response.status == status


# -- persistence ---------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report redirects instead of following them."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        """No new request: urllib raises HTTPError with the redirect's status."""
        return None


def _login_status(base: str, account: Account) -> int:
    """POST /login with urllib (blocking is fine in a plain test): the status."""
    form = urlencode(
        {"login_name": account.login_name, "password": account.password}
    ).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(f"{base}/login", data=form, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def _key_ids(base: str) -> list[str]:
    """The kids of the stand-in's published keys."""
    with urllib.request.urlopen(f"{base}/jwks", timeout=5) as response:
        return [key["kid"] for key in json.load(response)["keys"]]


def test_accounts_and_keys_survive_a_restart(
    standin: str, standin_files: tuple[Path, Path], account: Account
) -> None:
    """A second process on the same --data file knows the account and the key.

    A plain test: starting a process blocks, which an async test must not do.
    """
    with run_standin(*standin_files) as other:
        assert _key_ids(other) == _key_ids(standin)
        assert _login_status(other, account) == 303
        assert _login_status(standin, account) == 303
