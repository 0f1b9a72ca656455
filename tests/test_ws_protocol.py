"""The WebSocket protocol: auth first, envelopes, bad frames, slow clients, resume."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from server.keys import SOCKETS
from server.ws import protocol
from tests.helpers import make_user, new_session, next_frame, phone, phone_login, watch


@pytest.mark.parametrize("settings_overrides", [{"ws_auth_timeout": 0.3}])
async def test_socket_without_auth_is_closed(client: TestClient) -> None:
    session = await new_session(client)
    ws = await client.ws_connect(f"/ws/qr/{session['id']}")
    error = await next_frame(ws)
    assert error["code"] == "auth_timeout"
    message = await ws.receive(timeout=3)
    assert message.type == WSMsgType.CLOSE
    assert ws.close_code == protocol.CLOSE_AUTH_TIMEOUT


async def test_first_frame_must_be_auth(client: TestClient) -> None:
    session = await new_session(client)
    ws = await client.ws_connect(f"/ws/qr/{session['id']}")
    await ws.send_json({"type": "ping", "id": 1})
    assert (await next_frame(ws))["code"] == "unauthorized"
    await ws.receive(timeout=3)
    assert ws.close_code == protocol.CLOSE_UNAUTHORIZED


async def test_bad_frames_get_error_frames_and_the_socket_stays(
    client: TestClient,
) -> None:
    session = await new_session(client)
    ws = await watch(client, session)
    assert (await next_frame(ws))["state"] == "pending"
    cases: list[tuple[Any, str]] = [
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"id": 7}', "bad_frame"),
        ('{"id": {"x": 1}, "type": "ping"}', "bad_frame"),
        ('{"id": 8, "type": "launch"}', "unknown_type"),
        ('{"id": 9, "type": "ping", "pad": "' + "x" * 5000 + '"}', "too_large"),
    ]
    for text, code in cases:
        await ws.send_str(text)
        reply = await next_frame(ws)
        assert (reply["type"], reply["code"]) == ("error", code), text
    await ws.send_bytes(b"\x00\x01")
    assert (await next_frame(ws))["code"] == "bad_frame"
    await ws.send_json({"id": 10, "type": "ping"})
    assert await next_frame(ws) == {"type": "result", "id": 10, "result": "pong"}
    await ws.close()


async def test_frame_over_the_hard_limit_closes_with_1009(client: TestClient) -> None:
    session = await new_session(client)
    ws = await watch(client, session)
    await next_frame(ws)
    await ws.send_str("x" * (4096 * 16 + 1))
    message = await ws.receive(timeout=3)
    assert message.type == WSMsgType.CLOSE
    assert ws.close_code == 1009


async def test_reconnecting_page_resumes_without_losing_a_transition(
    client: TestClient,
) -> None:
    """A page whose socket drops gets what happened meanwhile, and nothing twice."""
    await make_user(client)
    auth = await phone_login(client)
    session = await new_session(client)
    ws = await watch(client, session)
    assert (await next_frame(ws))["version"] == 1
    await ws.close()

    await phone(client, "scan", session["id"], auth)  # happens while disconnected
    ws = await watch(client, session, version=1)
    resumed = await next_frame(ws)
    assert (resumed["state"], resumed["version"]) == ("scanned", 2)
    await phone(client, "confirm", session["id"], auth)
    confirmed = await next_frame(ws)
    assert (confirmed["state"], confirmed["version"]) == ("confirmed", 3)
    await ws.close()

    ws = await watch(client, session, version=3)  # up to date: nothing is resent
    await ws.send_json({"id": 1, "type": "ping"})
    assert (await next_frame(ws))["type"] == "result"
    await ws.close()


@pytest.mark.parametrize("settings_overrides", [{"ws_send_queue": 2}])
async def test_slow_client_is_dropped_with_its_own_code(client: TestClient) -> None:
    """A client whose queue fills is closed with CLOSE_SLOW; others are unaffected."""
    session = await new_session(client)
    ws = await watch(client, session)
    await next_frame(ws)
    for n in range(200):
        await ws.send_json({"id": n, "type": "ping"})
    codes = set()
    while True:
        message = await ws.receive(timeout=5)
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            break
        codes.add(message.type)
    assert ws.close_code == protocol.CLOSE_SLOW

    healthy = await watch(client, session)
    assert (await next_frame(healthy))["state"] == "pending"
    await healthy.close()


async def test_shutdown_closes_sockets_with_restart(client: TestClient) -> None:
    session = await new_session(client)
    ws = await watch(client, session)
    await next_frame(ws)
    assert len(client.app[SOCKETS]) == 1
    from server.ws.views import close_all

    await close_all(client.app)
    await ws.receive(timeout=3)
    assert ws.close_code == protocol.CLOSE_RESTART


async def test_many_watchers_of_one_session_all_get_the_push(
    client: TestClient,
) -> None:
    await make_user(client)
    auth = await phone_login(client)
    session = await new_session(client)
    sockets = [await watch(client, session) for _ in range(5)]
    for ws in sockets:
        await next_frame(ws)
    await phone(client, "scan", session["id"], auth)
    frames = await asyncio.gather(*(next_frame(ws) for ws in sockets))
    assert {f["state"] for f in frames} == {"scanned"}
    for ws in sockets:
        await ws.close()


async def test_watchers_of_two_sessions_each_get_their_own_ticket(
    client: TestClient,
) -> None:
    """Pushes reach the watchers of their own session only, and each page's
    ticket redeems its own session and no other."""
    await make_user(client)
    auth = await phone_login(client)
    sessions = [await new_session(client) for _ in range(2)]
    sockets = {s["id"]: [await watch(client, s) for _ in range(3)] for s in sessions}
    for ws in (ws for group in sockets.values() for ws in group):
        await next_frame(ws)
    for session in sessions:
        await phone(client, "scan", session["id"], auth)
    for session in sessions:
        await phone(client, "confirm", session["id"], auth)
    tickets = {}
    for session in sessions:
        group = sockets[session["id"]]
        scanned = await asyncio.gather(*(next_frame(ws) for ws in group))
        confirmed = await asyncio.gather(*(next_frame(ws) for ws in group))
        assert {(f["qr"], f["state"]) for f in scanned} == {(session["id"], "scanned")}
        assert {(f["qr"], f["state"]) for f in confirmed} == {
            (session["id"], "confirmed")
        }
        assert len({f["ticket"] for f in confirmed}) == 1
        tickets[session["id"]] = confirmed[0]["ticket"]

    first, second = sessions
    crossed = await client.post(
        f"/api/qr/sessions/{first['id']}/redeem",
        json={"ticket": tickets[second["id"]]},
        headers={"Authorization": f"Bearer {first['watch_token']}"},
    )
    assert crossed.status == 401
    for session in sessions:
        redeemed = await client.post(
            f"/api/qr/sessions/{session['id']}/redeem",
            json={"ticket": tickets[session["id"]]},
            headers={"Authorization": f"Bearer {session['watch_token']}"},
        )
        assert redeemed.status == 200, await redeemed.text()
    for ws in (ws for group in sockets.values() for ws in group):
        await ws.close()


async def test_data_after_close_does_not_rearm_the_heartbeat(
    client: TestClient,
) -> None:
    """A closed socket keeps no timer, whatever arrives after the close.

    aiohttp re-arms the heartbeat on every chunk received, including the peer's
    answer to our close; the timer then held each finished socket, its request
    and its buffers for the heartbeat interval and the pong timeout (about 40 s
    of logins, hundreds of megabytes under load). The page's late answer is
    replayed here through the hook aiohttp's protocol calls on each chunk.
    """
    session = await new_session(client)
    ws = await watch(client, session)
    await next_frame(ws)
    (server_ws,) = client.app[SOCKETS]
    closing = asyncio.ensure_future(server_ws.close(code=1000))
    await asyncio.sleep(0.05)
    assert server_ws.closed and server_ws._heartbeat_cb is None

    server_ws._on_data_received()  # the page's close frame, arriving now
    await asyncio.sleep(0.05)
    assert server_ws._heartbeat_cb is None
    await ws.close()
    await closing
    del server_ws

    for _ in range(50):
        await asyncio.sleep(0.02)
        gc.collect()
        if not client.app[SOCKETS]:
            break
    assert len(client.app[SOCKETS]) == 0
