"""Accounts: registration, lockout, one-time codes, recovery, the personal center."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server.auth.web import COOKIE
from server.errors import Conflict
from server.keys import AUTH, BROKER, DELIVERY, ENGINE
from server.tables import consents
from tests.conftest import FakeClock
from tests.helpers import (
    PASSWORD,
    assert_error,
    csrf,
    make_user,
    outbox_code,
    phone_login,
    request_code,
    solve_captcha,
)

PHONE = "13912345678"


async def register(
    client: TestClient, username: str = "newbie", phone: str = PHONE, **extra: Any
) -> Any:
    """Ask for a register code and register with it."""
    sent = await request_code(client, "register", phone)
    assert sent.status == 200, await sent.text()
    code = await outbox_code(client, phone.replace("+86", "").replace(" ", ""))
    body = {
        "phone": phone,
        "code": code,
        "username": username,
        "password": PASSWORD,
        "user_type": "individual",
        "agree": True,
        **extra,
    }
    return await client.post("/api/auth/register", json=body, headers=csrf(client))


# -- registration -------------------------------------------------------------------


async def test_register_with_phone_and_code_logs_in_and_records_consent(
    client: TestClient,
) -> None:
    response = await register(client, phone="+86 139 1234 5678")
    assert response.status == 200, await response.text()
    assert COOKIE in response.cookies
    me = await (await client.get("/api/me")).json()
    assert me["username"] == "newbie" and me["phone"] == "139****5678"
    async with client.app[ENGINE].connect() as conn:
        rows = (await conn.execute(sa.select(consents))).mappings().all()
    assert {(r["document"], r["version"]) for r in rows} == {
        ("terms", "2026-01"),
        ("privacy", "2026-01"),
    }


async def test_registration_needs_consent_and_a_valid_code(client: TestClient) -> None:
    response = await register(client, agree=False)
    assert response.status == 422
    assert_error(await response.json(), "consent_required")
    body = {
        "phone": PHONE,
        "code": "000000",
        "username": "x_user",
        "password": PASSWORD,
        "agree": True,
    }
    wrong = await client.post("/api/auth/register", json=body, headers=csrf(client))
    assert wrong.status in (410, 422)


async def test_registered_phone_and_taken_username_are_refused(
    client: TestClient,
) -> None:
    await make_user(client, "alice", phone=PHONE)
    again = await request_code(client, "register", PHONE)
    assert again.status == 409
    assert_error(await again.json(), "phone_taken")

    response = await register(client, username="alice", phone="13900000001")
    assert response.status == 409
    body = await response.json()
    assert_error(body, "username_taken")
    assert "换一个" in body["error"]["message"]
    free = await (
        await client.get("/api/auth/username-available?username=alice")
    ).json()
    assert free["available"] is False


async def test_two_registrations_at_the_same_instant(client: TestClient) -> None:
    """Unique indexes hold the rules even when the checks before them raced."""
    auth = client.app[AUTH]
    same_phone = await asyncio.gather(
        *(
            auth.create_user(username=f"racer{n}", password=PASSWORD, phone=PHONE)
            for n in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in same_phone) == 1
    assert {r.code for r in same_phone if isinstance(r, Conflict)} == {"phone_taken"}

    same_name = await asyncio.gather(
        *(
            auth.create_user(
                username="samename", password=PASSWORD, phone=f"1370000000{n}"
            )
            for n in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in same_name) == 1
    assert {r.code for r in same_name if isinstance(r, Conflict)} == {"username_taken"}


@pytest.mark.parametrize("phone", ["12800138000", "1380013800", "+1 555 0100", "phone"])
async def test_only_mainland_mobiles(client: TestClient, phone: str) -> None:
    response = await request_code(client, "register", phone)
    assert response.status == 422


@pytest.mark.parametrize(
    "password", ["short12", "x" * 129, "12345678", "iloveyou", "Password1"]
)
async def test_password_rules(client: TestClient, password: str) -> None:
    sent = await request_code(client, "register", PHONE)
    assert sent.status == 200
    body = {
        "phone": PHONE,
        "code": await outbox_code(client, PHONE),
        "username": "newbie",
        "password": password,
        "agree": True,
    }
    response = await client.post("/api/auth/register", json=body, headers=csrf(client))
    assert response.status == 422
    assert_error(await response.json(), "weak_password")


# -- lockout ------------------------------------------------------------------------


class TestLockout:
    """Five wrong passwords lock for ten minutes, on an injected clock."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    async def login(
        self, client: TestClient, password: str, account: str = "alice"
    ) -> Any:
        response = await client.post(
            "/api/app/login", json={"account": account, "password": password}
        )
        return response.status, (await response.json())

    async def test_timeline(self, client: TestClient, clock: FakeClock) -> None:
        await make_user(client)
        for _ in range(4):
            status, body = await self.login(client, "wrong password")
            assert status == 401 and body["error"]["code"] == "bad_credentials"
        status, body = await self.login(client, "wrong password")
        assert status == 423 and body["error"]["code"] == "locked"

        # The right password during the lock gets the very same answer.
        assert await self.login(client, PASSWORD) == (status, body)
        clock.advance(9 * 60)
        assert (await self.login(client, "wrong password"))[0] == 423
        clock.advance(
            61
        )  # ten minutes after the lock began: failures did not extend it
        status, _ = await self.login(client, PASSWORD)
        assert status == 200

        # Success reset the count: four more wrong tries do not lock.
        for _ in range(4):
            assert (await self.login(client, "wrong password"))[0] == 401
        assert (await self.login(client, PASSWORD))[0] == 200
        assert (await self.login(client, "wrong password"))[0] == 401

    async def test_code_login_still_works_while_locked(
        self, client: TestClient
    ) -> None:
        await make_user(client, phone=PHONE)
        for _ in range(5):
            await self.login(client, "wrong password")
        assert (await self.login(client, PASSWORD))[0] == 423
        assert (await request_code(client, "login", PHONE)).status == 200
        code = await outbox_code(client, PHONE)
        response = await client.post(
            "/api/app/code-login", json={"destination": PHONE, "code": code}
        )
        assert response.status == 200

    async def test_unknown_accounts_answer_alike(self, client: TestClient) -> None:
        await make_user(client)
        real = [await self.login(client, "wrong password") for _ in range(6)]
        ghost = [await self.login(client, "wrong password", "nobody") for _ in range(6)]
        assert real == ghost

    async def test_page_form_shows_the_lock_without_saying_more(
        self, client: TestClient
    ) -> None:
        await make_user(client)
        await client.get("/declare/login")
        form = {
            "account": "alice",
            "password": "wrong password",
            "csrf": csrf(client)["X-CSRF-Token"],
        }
        for _ in range(5):
            response = await client.post(
                "/declare/login", data=form, allow_redirects=False
            )
        text = await response.text()
        assert response.status == 423 and "锁定" in text
        form["password"] = PASSWORD
        again = await client.post("/declare/login", data=form, allow_redirects=False)
        assert again.status == 423 and await again.text() == text


# -- one-time codes -----------------------------------------------------------------


async def test_captcha_is_single_use_and_must_be_right(client: TestClient) -> None:
    captcha = await solve_captcha(client)
    image = await client.get(f"/api/captcha/{captcha['captcha_id']}/image")
    assert image.status == 200 and image.content_type == "image/png"
    body = {
        "purpose": "login",
        "destination": PHONE,
        **captcha,
        "captcha_answer": "zzzz",
    }
    wrong = await client.post("/api/codes", json=body)
    assert_error(await wrong.json(), "bad_captcha")
    body["captcha_answer"] = captcha["captcha_answer"]
    reused = await client.post("/api/codes", json=body)
    assert_error(await reused.json(), "captcha_expired")


async def test_codes_are_stored_hashed_and_bound_to_their_purpose(
    client: TestClient,
) -> None:
    await make_user(client, phone=PHONE)
    assert (await request_code(client, "login", PHONE)).status == 200
    code = await outbox_code(client, PHONE)
    assert code is not None
    stored = await client.app[BROKER].get(f"otp:login:{PHONE}")
    assert stored is not None and code not in stored
    wrong_purpose = await client.post(
        "/api/auth/reset",
        json={"phone": PHONE, "code": code, "password": "brand new secret"},
    )
    assert wrong_purpose.status == 410
    ok = await client.post(
        "/api/app/code-login", json={"destination": PHONE, "code": code}
    )
    assert ok.status == 200
    again = await client.post(
        "/api/app/code-login", json={"destination": PHONE, "code": code}
    )
    assert_error(await again.json(), "code_expired")


async def test_five_wrong_codes_void_the_code(client: TestClient) -> None:
    await make_user(client, phone=PHONE)
    await request_code(client, "login", PHONE)
    code = await outbox_code(client, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    codes = []
    for _ in range(5):
        response = await client.post(
            "/api/app/code-login", json={"destination": PHONE, "code": wrong}
        )
        codes.append((await response.json())["error"]["code"])
    assert codes == ["bad_code"] * 4 + ["code_void"]
    late = await client.post(
        "/api/app/code-login", json={"destination": PHONE, "code": code}
    )
    assert_error(await late.json(), "code_expired")


@pytest.mark.parametrize("settings_overrides", [{"code_ttl": 0.5}])
async def test_codes_expire(client: TestClient) -> None:
    await make_user(client, phone=PHONE)
    await request_code(client, "login", PHONE)
    code = await outbox_code(client, PHONE)
    await asyncio.sleep(0.8)
    late = await client.post(
        "/api/app/code-login", json={"destination": PHONE, "code": code}
    )
    assert late.status == 410


async def test_resend_waits_a_minute(client: TestClient) -> None:
    await make_user(client, phone=PHONE)
    assert (await request_code(client, "login", PHONE)).status == 200
    again = await request_code(client, "login", PHONE)
    assert again.status == 429
    assert 1 <= int(again.headers["Retry-After"]) <= 60


@pytest.mark.parametrize(
    "settings_overrides", [{"code_resend_after": 0, "limit_code_ip": "100/hour"}]
)
async def test_hourly_cap_per_recipient(client: TestClient) -> None:
    await make_user(client, phone=PHONE)
    statuses = [(await request_code(client, "login", PHONE)).status for _ in range(6)]
    assert statuses == [200] * 5 + [429]


@pytest.mark.parametrize(
    "settings_overrides", [{"code_resend_after": 0, "limit_code_ip": "3/hour"}]
)
async def test_cap_per_ip(client: TestClient) -> None:
    statuses = [
        (await request_code(client, "login", f"1390000000{n}")).status for n in range(4)
    ]
    assert statuses == [200] * 3 + [429]


async def test_code_to_unknown_phone_looks_sent_but_is_not(client: TestClient) -> None:
    response = await request_code(client, "login", PHONE)
    assert response.status == 200 and (await response.json())["sent"] is True
    assert await outbox_code(client, PHONE) is None


async def test_email_code_login(client: TestClient) -> None:
    await client.app[AUTH].create_user(
        username="mailer", password=PASSWORD, email="Mailer@Example.org"
    )
    assert (await request_code(client, "login", "mailer@example.org")).status == 200
    code = await outbox_code(client, "mailer@example.org")
    response = await client.post(
        "/api/auth/code-login",
        json={"destination": "MAILER@example.org", "code": code},
        headers=csrf(client),
    )
    assert response.status == 200 and COOKIE in response.cookies


# -- recovery -----------------------------------------------------------------------


async def test_reset_ends_every_session_and_tells_the_user(client: TestClient) -> None:
    await make_user(client, phone=PHONE)
    app_token = await phone_login(client)
    assert (await request_code(client, "reset", PHONE)).status == 200
    code = await outbox_code(client, PHONE)
    response = await client.post(
        "/api/auth/reset",
        json={"phone": PHONE, "code": code, "password": "a brand new secret"},
        headers=csrf(client),
    )
    assert response.status == 200
    assert COOKIE not in response.cookies  # no automatic login
    assert (await client.get("/api/me", headers=app_token)).status == 401
    message = await client.app[DELIVERY].outbox.latest(PHONE)
    assert message is not None and "密码" in message.text and "修改" in message.text
    old = await client.post(
        "/api/app/login", json={"account": "alice", "password": PASSWORD}
    )
    new = await client.post(
        "/api/app/login", json={"account": "alice", "password": "a brand new secret"}
    )
    assert (old.status, new.status) == (401, 200)


# -- the personal center ------------------------------------------------------------


async def test_change_password_needs_the_old_one_and_keeps_this_session(
    client: TestClient,
) -> None:
    await make_user(client, phone=PHONE)
    here, there = await phone_login(client), await phone_login(client)
    wrong = await client.post(
        "/api/me/password",
        headers=here,
        json={"old_password": "not it at all", "new_password": "another fine secret"},
    )
    assert_error(await wrong.json(), "bad_old_password")
    ok = await client.post(
        "/api/me/password",
        headers=here,
        json={"old_password": PASSWORD, "new_password": "another fine secret"},
    )
    assert ok.status == 200
    assert (await client.get("/api/me", headers=here)).status == 200
    assert (await client.get("/api/me", headers=there)).status == 401


async def test_change_phone_needs_password_and_a_code_to_the_new_phone(
    client: TestClient,
) -> None:
    await make_user(client, phone=PHONE)
    auth = await phone_login(client)
    new = "13700001111"
    assert (await request_code(client, "change_phone", new, headers=auth)).status == 200
    code = await outbox_code(client, new)
    bad = await client.post(
        "/api/me/phone",
        headers=auth,
        json={"password": "wrong password", "phone": new, "code": code},
    )
    assert bad.status == 422
    ok = await client.post(
        "/api/me/phone",
        headers=auth,
        json={"password": PASSWORD, "phone": new, "code": code},
    )
    assert ok.status == 200 and (await ok.json())["phone"] == "137****1111"
    taken = await request_code(client, "change_phone", new, headers=auth)
    assert taken.status == 409


async def test_sessions_are_listed_and_revocable(client: TestClient) -> None:
    await make_user(client)
    first, second = await phone_login(client), await phone_login(client)
    listed = (await (await client.get("/api/me/sessions", headers=first)).json())[
        "sessions"
    ]
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    other = next(s for s in listed if not s["current"])
    assert (
        await client.delete(f"/api/me/sessions/{other['id']}", headers=first)
    ).status == 200
    assert (await client.get("/api/me", headers=second)).status == 401
    missing = await client.delete("/api/me/sessions/ffffffffffffffff", headers=first)
    assert missing.status == 404
    everywhere = await client.post("/api/me/logout-all", headers=first)
    assert (await everywhere.json())["ended"] == 1
    assert (await client.get("/api/me", headers=first)).status == 401


async def test_profile_name_can_change(client: TestClient) -> None:
    await make_user(client)
    auth = await phone_login(client)
    response = await client.patch(
        "/api/me", headers=auth, json={"display_name": "李四"}
    )
    assert (await response.json())["name"] == "李四"


# -- CSRF ---------------------------------------------------------------------------


async def test_cookie_writes_need_the_csrf_token(client: TestClient) -> None:
    await make_user(client)
    await client.get("/declare/login")
    token = csrf(client)
    form = {"account": "alice", "password": PASSWORD}
    refused = await client.post("/declare/login", data=form, allow_redirects=False)
    assert refused.status == 403
    logged_in = await client.post(
        "/declare/login",
        data={**form, "csrf": token["X-CSRF-Token"]},
        allow_redirects=False,
    )
    assert logged_in.status == 303
    no_header = await client.patch("/api/me", json={"display_name": "x"})
    assert no_header.status == 403
    assert_error(await no_header.json(), "bad_csrf")
    forged = await client.patch(
        "/api/me", json={"display_name": "x"}, headers={"X-CSRF-Token": "f" * 32}
    )
    assert forged.status == 403
    ok = await client.patch("/api/me", json={"display_name": "x"}, headers=token)
    assert ok.status == 200
