"""The scan-to-login flow end to end, over both backend pairs."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from server.auth.web import COOKIE
from server.qr.service import ID_BYTES
from tests.helpers import (
    assert_error,
    make_user,
    new_session,
    next_frame,
    phone,
    phone_login,
    watch,
)


async def test_confirm_is_pushed_and_ticket_logs_the_page_in(
    client: TestClient,
) -> None:
    await make_user(client)
    auth = await phone_login(client)
    session = await new_session(client)
    assert set(session) >= {
        "id",
        "qr_url",
        "image_url",
        "expires_in",
        "watch_token",
        "ws_url",
    }
    assert session["qr_url"].endswith(f"/qr/s/{session['id']}")

    ws = await watch(client, session)
    first = await next_frame(ws)
    assert (first["type"], first["state"], first["version"]) == ("state", "pending", 1)

    scanned = await phone(client, "scan", session["id"], auth)
    assert scanned.status == 200
    details = await scanned.json()
    assert details["requester"]["ip"] == "127.0.0.1"
    assert details["requester"]["same_network"] is True
    frame = await next_frame(ws)
    assert (frame["state"], frame["version"]) == ("scanned", 2)
    assert frame["user"]["name"] == "张*三"
    assert "ticket" not in frame

    assert (await phone(client, "confirm", session["id"], auth)).status == 200
    frame = await next_frame(ws)
    assert (frame["state"], frame["version"]) == ("confirmed", 3)
    ticket = frame["ticket"]

    redeemed = await client.post(
        f"/api/qr/sessions/{session['id']}/redeem",
        json={"ticket": ticket},
        headers={"Authorization": f"Bearer {session['watch_token']}"},
    )
    assert redeemed.status == 200, await redeemed.text()
    cookie = redeemed.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert len(cookie.value) >= 43  # 256 bits, base64url

    consumed = await next_frame(ws)
    assert consumed["state"] == "consumed"
    home = await client.get("/declare/")
    assert home.status == 200
    assert "张小三" in await home.text()
    await ws.close()


async def test_qr_image_is_svg_of_the_qr_url(client: TestClient) -> None:
    session = await new_session(client)
    response = await client.get(f"/api/qr/sessions/{session['id']}/image")
    assert response.status == 200
    assert response.content_type == "image/svg+xml"
    assert (await response.text()).startswith("<svg")


async def test_ids_are_long_random_and_never_client_chosen(client: TestClient) -> None:
    """Security property 1."""
    ids = {(await new_session(client))["id"] for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) * 6 >= ID_BYTES * 8 >= 128 for i in ids)
    chosen = await client.post("/api/qr/sessions", json={"id": "A" * 24})
    assert (await chosen.json())["id"] != "A" * 24
    made_up = await client.get(
        "/api/qr/sessions/" + "A" * 24, headers={"Authorization": "Bearer x"}
    )
    assert made_up.status == 401


async def test_watching_and_redeeming_need_the_watch_token(client: TestClient) -> None:
    """Security property 2: the QR (its id) alone watches nothing and redeems nothing."""
    await make_user(client)
    auth = await phone_login(client)
    session = await new_session(client)
    other = await new_session(client)

    ws = await client.ws_connect(f"/ws/qr/{session['id']}")
    await ws.send_json({"type": "auth", "token": other["watch_token"]})
    error = await next_frame(ws)
    assert error["code"] == "bad_watch_token"
    await ws.receive()
    assert ws.close_code == 4001

    for token in (None, "nope", other["watch_token"]):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        polled = await client.get(f"/api/qr/sessions/{session['id']}", headers=headers)
        assert polled.status == 401
        assert_error(await polled.json(), "bad_watch_token")

    await phone(client, "scan", session["id"], auth)
    await phone(client, "confirm", session["id"], auth)
    polled = await client.get(
        f"/api/qr/sessions/{session['id']}",
        headers={"Authorization": f"Bearer {session['watch_token']}"},
    )
    ticket = (await polled.json())["ticket"]
    stolen = await client.post(
        f"/api/qr/sessions/{session['id']}/redeem",
        json={"ticket": ticket},
        headers={"Authorization": f"Bearer {other['watch_token']}"},
    )
    assert stolen.status == 401
    no_token = await client.post(
        f"/api/qr/sessions/{session['id']}/redeem", json={"ticket": ticket}
    )
    assert no_token.status == 401


async def test_one_scan_wins_under_concurrent_scans(client: TestClient) -> None:
    """Security property 3: of many phones scanning at once, exactly one wins."""
    phones = []
    for n in range(6):
        await make_user(client, f"user{n}", display_name=f"用户{n}")
        phones.append(await phone_login(client, f"user{n}"))
    session = await new_session(client)
    responses = await asyncio.gather(
        *(phone(client, "scan", session["id"], a) for a in phones)
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [409] * 5
    for response in responses:
        if response.status == 409:
            assert_error(await response.json(), "already_scanned")


async def test_one_redeem_wins_under_concurrent_redeems(client: TestClient) -> None:
    """Security property 3: a ticket logs in once, even when sent many times at once."""
    await make_user(client)
    auth = await phone_login(client)
    session = await new_session(client)
    await phone(client, "scan", session["id"], auth)
    await phone(client, "confirm", session["id"], auth)
    headers = {"Authorization": f"Bearer {session['watch_token']}"}
    frame = await (
        await client.get(f"/api/qr/sessions/{session['id']}", headers=headers)
    ).json()

    async def redeem() -> int:
        response = await client.post(
            f"/api/qr/sessions/{session['id']}/redeem",
            json={"ticket": frame["ticket"]},
            headers=headers,
        )
        return response.status

    statuses = sorted(await asyncio.gather(*(redeem() for _ in range(6))))
    assert statuses == [200] + [409] * 5


async def test_nothing_works_after_a_final_state(client: TestClient) -> None:
    """Security property 3: cancelled and consumed sessions accept no further step."""
    await make_user(client)
    auth = await phone_login(client)
    session = await new_session(client)
    await phone(client, "scan", session["id"], auth)
    assert (await phone(client, "cancel", session["id"], auth)).status == 200
    for action in ("scan", "confirm", "cancel"):
        response = await phone(client, action, session["id"], auth)
        assert response.status == 409
        assert_error(await response.json(), "cancelled")


async def test_only_the_scanning_user_may_answer(client: TestClient) -> None:
    """Security property 4."""
    await make_user(client, "alice")
    await make_user(client, "mallory", display_name="")
    alice, mallory = (
        await phone_login(client, "alice"),
        await phone_login(client, "mallory"),
    )
    session = await new_session(client)
    await phone(client, "scan", session["id"], alice)
    for action in ("confirm", "cancel"):
        response = await phone(client, action, session["id"], mallory)
        assert response.status == 403
        assert_error(await response.json(), "not_scanner")
    bad = await phone(
        client, "confirm", session["id"], {"Authorization": "Bearer forged"}
    )
    assert bad.status == 401
    none = await client.post(f"/api/app/qr/{session['id']}/confirm")
    assert none.status == 401


async def test_logged_out_app_token_stops_working(client: TestClient) -> None:
    """Security property 4: the token is checked on every call, so revoking bites,
    also when this node has just used it (and keeps a copy of it)."""
    await make_user(client)
    auth = await phone_login(client)
    used = await new_session(client)
    assert (await phone(client, "scan", used["id"], auth)).status == 200
    assert (await client.post("/api/app/logout", headers=auth)).status == 200
    session = await new_session(client)
    response = await phone(client, "scan", session["id"], auth)
    assert response.status == 401
    assert_error(await response.json(), "session_ended")


async def test_page_sees_masked_name_phone_sees_requester(client: TestClient) -> None:
    """Security property 5: minimal data on each side."""
    await make_user(client, "alice", phone="13800138000", display_name="欧阳小明")
    auth = await phone_login(client)
    agent = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
    )
    session = await new_session(client, **{"User-Agent": agent})
    ws = await watch(client, session)
    await next_frame(ws)
    details = await (await phone(client, "scan", session["id"], auth)).json()
    assert details["requester"]["browser"] == "Chrome 120"
    assert details["requester"]["os"] == "Windows 10"
    assert isinstance(details["requester"]["requested_at"], float)
    frame = await next_frame(ws)
    assert frame["user"] == {"name": "欧**明", "avatar": ""}
    text = str(frame)
    assert "13800138000" not in text and "alice" not in text and "user_id" not in text
    await ws.close()


async def test_network_hint_when_the_networks_differ(client: TestClient) -> None:
    """Security property 5: the phone is told when the PC is elsewhere."""
    await make_user(client)
    auth = await phone_login(client)
    session = await new_session(client)
    response = await client.post(
        f"/api/app/qr/{session['id']}/scan",
        headers={**auth, "X-Forwarded-For": "203.0.113.9"},
    )
    assert (await response.json())["requester"][
        "same_network"
    ] is True  # no proxy trusted

    from server.qr.service import same_network

    assert same_network("10.1.2.3", "10.1.2.200")
    assert not same_network("10.1.2.3", "10.1.3.3")
    assert not same_network("2001:db8::1", "2001:db9::1")
    assert not same_network("10.1.2.3", "not an ip")


async def test_audit_records_every_step_with_both_sides(client: TestClient) -> None:
    """Security property 9."""
    import sqlalchemy as sa

    from server.keys import AUDIT, ENGINE
    from server.tables import audit_events

    await make_user(client)
    auth = await phone_login(client)
    session = await new_session(client, **{"User-Agent": "PC-Browser/1.0"})
    await phone(client, "scan", session["id"], {**auth, "User-Agent": "Phone-App/2.0"})
    await phone(
        client, "confirm", session["id"], {**auth, "User-Agent": "Phone-App/2.0"}
    )
    headers = {
        "Authorization": f"Bearer {session['watch_token']}",
        "User-Agent": "PC-Browser/1.0",
    }
    frame = await (
        await client.get(f"/api/qr/sessions/{session['id']}", headers=headers)
    ).json()
    await client.post(
        f"/api/qr/sessions/{session['id']}/redeem",
        json={"ticket": frame["ticket"]},
        headers=headers,
    )
    cancelled = await new_session(client)
    await phone(client, "scan", cancelled["id"], auth)
    await phone(client, "cancel", cancelled["id"], auth)

    await client.app[AUDIT].flush()
    async with client.app[ENGINE].connect() as conn:
        rows = (
            (await conn.execute(sa.select(audit_events).order_by(audit_events.c.id)))
            .mappings()
            .all()
        )
    events = {(r["event"], r["subject"]): r for r in rows}
    sid = session["id"]
    assert events[("qr_created", sid)]["user_agent"] == "PC-Browser/1.0"
    assert events[("qr_scanned", sid)]["user_agent"] == "Phone-App/2.0"
    assert events[("qr_confirmed", sid)]["ip"] == "127.0.0.1"
    assert events[("qr_redeemed", sid)]["user_agent"] == "PC-Browser/1.0"
    assert ("qr_cancelled", cancelled["id"]) in events
    assert all(r["ip"] == "127.0.0.1" for r in rows if r["event"].startswith("qr_"))
