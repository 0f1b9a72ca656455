"""Security properties 6 to 8: Origin checks, rate limits, short lifetimes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient

from server.keys import SETTINGS
from tests.conftest import FakeClock
from tests.helpers import (
    assert_error,
    make_user,
    new_session,
    next_frame,
    phone,
    phone_login,
    watch,
)


async def test_socket_from_a_foreign_origin_is_refused(client: TestClient) -> None:
    """Property 6: cross-site WebSocket hijacking is stopped at the upgrade."""
    session = await new_session(client)
    with pytest.raises(WSServerHandshakeError) as caught:
        await client.ws_connect(
            f"/ws/qr/{session['id']}", headers={"Origin": "https://evil.example"}
        )
    assert caught.value.status == 403
    own = client.app[SETTINGS].public_origin
    ws = await client.ws_connect(f"/ws/qr/{session['id']}", headers={"Origin": own})
    await ws.send_json({"type": "auth", "token": session["watch_token"]})
    assert (await next_frame(ws))["state"] == "pending"
    await ws.close()


async def test_cookie_writes_from_a_foreign_origin_are_refused(
    client: TestClient,
) -> None:
    """Property 6: a cross-site form cannot log out, log in, or confirm."""
    await make_user(client)
    for path in ("/logout", "/declare/login", "/api/app/login", "/api/qr/sessions"):
        response = await client.post(path, headers={"Origin": "https://evil.example"})
        assert response.status == 403, path
    response = await client.post("/api/qr/sessions", headers={"Origin": "null"})
    assert response.status == 403
    assert_error(await response.json(), "bad_origin")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "limit_qr_create": "3/minute",
        "limit_scan": "4/minute",
        "limit_redeem": "2/minute",
        "limit_longpoll": "2/minute",
        "limit_app_login": "5/minute",
    }


async def test_rate_limits_answer_429_with_retry_after(client: TestClient) -> None:
    """Property 7: creation per IP, scans per user, redeems and long-polls per IP."""
    for _ in range(3):
        await new_session(client)
    limited = await client.post("/api/qr/sessions", json={})
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert_error(await limited.json(), "rate_limited")

    await make_user(client)
    auth = await phone_login(client)
    statuses = []
    for _ in range(5):
        statuses.append((await phone(client, "scan", "A" * 24, auth)).status)
    assert statuses == [404, 404, 404, 404, 429]

    for _ in range(2):
        await client.post(f"/api/qr/sessions/{'A' * 24}/redeem", json={"ticket": "x"})
    redeem = await client.post(
        f"/api/qr/sessions/{'A' * 24}/redeem", json={"ticket": "x"}
    )
    assert redeem.status == 429 and "Retry-After" in redeem.headers


async def test_long_poll_is_rate_limited(
    client: TestClient, make_settings: Any
) -> None:
    """Property 7, for long-poll watchers."""
    session = await new_session(client)
    headers = {"Authorization": f"Bearer {session['watch_token']}"}
    url = f"/api/qr/sessions/{session['id']}?wait=0.05"
    assert [(await client.get(url, headers=headers)).status for _ in range(3)] == [
        200,
        200,
        429,
    ]


class TestLifetime:
    """Property 8: short lifetime, automatic rotation up to a limit, then expired."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"qr_lifetime": 120, "qr_max_rotations": 2, "qr_step_lifetime": 60}

    async def test_expired_session_refuses_every_step(
        self, client: TestClient, clock: FakeClock
    ) -> None:
        await make_user(client)
        auth = await phone_login(client)
        session = await new_session(client)
        clock.advance(120.1)
        response = await phone(client, "scan", session["id"], auth)
        assert response.status == 410
        assert_error(await response.json(), "expired")
        headers = {"Authorization": f"Bearer {session['watch_token']}"}
        polled = await (
            await client.get(f"/api/qr/sessions/{session['id']}", headers=headers)
        ).json()
        assert polled["state"] == "expired"

    async def test_ticket_expires_if_not_redeemed(
        self, client: TestClient, clock: FakeClock
    ) -> None:
        await make_user(client)
        auth = await phone_login(client)
        session = await new_session(client)
        await phone(client, "scan", session["id"], auth)
        await phone(client, "confirm", session["id"], auth)
        headers = {"Authorization": f"Bearer {session['watch_token']}"}
        frame = await (
            await client.get(f"/api/qr/sessions/{session['id']}", headers=headers)
        ).json()
        clock.advance(61)
        late = await client.post(
            f"/api/qr/sessions/{session['id']}/redeem",
            json={"ticket": frame["ticket"]},
            headers=headers,
        )
        assert late.status == 410

    async def test_rotation_stops_at_the_limit(self, client: TestClient) -> None:
        session = await new_session(client)
        for generation in (1, 2):
            rotated = await client.post(
                "/api/qr/sessions",
                json={
                    "rotate_from": session["id"],
                    "watch_token": session["watch_token"],
                },
            )
            assert rotated.status == 201
            old = session
            session = await rotated.json()
            assert session["generation"] == generation
            headers = {"Authorization": f"Bearer {old['watch_token']}"}
            state = await (
                await client.get(f"/api/qr/sessions/{old['id']}", headers=headers)
            ).json()
            assert state["state"] == "expired"
        refused = await client.post(
            "/api/qr/sessions",
            json={"rotate_from": session["id"], "watch_token": session["watch_token"]},
        )
        assert refused.status == 409
        assert_error(await refused.json(), "rotation_limit")
        forged = await client.post(
            "/api/qr/sessions",
            json={"rotate_from": session["id"], "watch_token": "forged"},
        )
        assert forged.status == 401


@pytest.mark.parametrize("settings_overrides", [{"qr_lifetime": 0.4}])
async def test_watching_page_is_told_of_expiry(client: TestClient) -> None:
    """Property 8: the page learns of expiry by push, without asking."""
    session = await new_session(client)
    ws = await watch(client, session)
    assert (await next_frame(ws))["state"] == "pending"
    expired = await next_frame(ws, timeout=3)
    assert (expired["state"], expired["version"]) == ("expired", 2)
    await ws.receive(timeout=2)
    assert ws.close_code == 1000


@pytest.mark.parametrize("settings_overrides", [{"qr_lifetime": 0.4}])
async def test_long_poll_returns_at_expiry(client: TestClient) -> None:
    session = await new_session(client)
    headers = {"Authorization": f"Bearer {session['watch_token']}"}
    url = f"/api/qr/sessions/{session['id']}?wait=30&since=1"
    # Without the push at expiry the request would hang for 30 s and time out here.
    response = await asyncio.wait_for(client.get(url, headers=headers), timeout=10)
    assert (await response.json())["state"] == "expired"
