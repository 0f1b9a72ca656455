"""The notification center: durable, pushed live, resumed without loss or repeats."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import event

import server.notify.service
from server.errors import Unavailable
from server.keys import AUTH, BROKER, ENGINE, NOTIFY
from server.ws import protocol
from tests.helpers import (
    assert_error,
    make_user,
    new_session,
    next_frame,
    phone,
    phone_login,
    watch,
)

UA_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)


async def user_socket(
    client: TestClient, auth: dict[str, str], last_id: int = 0
) -> tuple[ClientWebSocketResponse, list[dict[str, Any]]]:
    """Open /ws with an app token; returns the socket and the frames up to ready."""
    ws = await client.ws_connect("/ws")
    token = auth["Authorization"].split()[1]
    await ws.send_json({"type": "auth", "token": token, "last_id": last_id})
    frames = []
    while True:
        frame = json.loads((await ws.receive(timeout=5)).data)
        frames.append(frame)
        if frame["type"] == "ready":
            return ws, frames


async def next_json(ws: ClientWebSocketResponse) -> dict[str, Any]:
    """The next frame."""
    return json.loads((await ws.receive(timeout=5)).data)


async def test_notification_is_stored_and_pushed_live(client: TestClient) -> None:
    user_id = await make_user(client)
    auth = await phone_login(client)
    ws, frames = await user_socket(client, auth)
    assert frames == [{"type": "ready", "unread": 0, "last_id": 0}]

    await client.app[NOTIFY].notify(user_id, "review", "审核通过", "您的解绑申请已通过")
    frame = await next_json(ws)
    assert frame["type"] == "notification"
    assert (
        frame["notification"]["title"] == "审核通过"
        and not frame["notification"]["read"]
    )

    listed = await (await client.get("/api/notifications", headers=auth)).json()
    assert (
        listed["unread"] == 1
        and listed["items"][0]["id"] == frame["notification"]["id"]
    )
    await ws.close()


async def test_every_open_page_of_the_user_gets_it(client: TestClient) -> None:
    user_id = await make_user(client)
    sockets = [
        (await user_socket(client, await phone_login(client)))[0] for _ in range(3)
    ]
    await client.app[NOTIFY].notify(user_id, "review", "通知")
    frames = await asyncio.gather(*(next_json(ws) for ws in sockets))
    assert {f["notification"]["title"] for f in frames} == {"通知"}
    for ws in sockets:
        await ws.close()


async def test_reconnect_resumes_in_order_without_duplicates(
    client: TestClient,
) -> None:
    """Notifications sent while the socket was down arrive on reconnect, once each."""
    user_id = await make_user(client)
    auth = await phone_login(client)
    notify = client.app[NOTIFY]
    ws, _ = await user_socket(client, auth)
    first = await notify.notify(user_id, "k", "one")
    assert (await next_json(ws))["notification"]["id"] == first["id"]
    await ws.close()

    missed = [await notify.notify(user_id, "k", f"missed {n}") for n in range(3)]
    ws, frames = await user_socket(client, auth, last_id=first["id"])
    got = [f["notification"]["id"] for f in frames if f["type"] == "notification"]
    assert got == [m["id"] for m in missed]
    assert frames[-1] == {"type": "ready", "unread": 4, "last_id": missed[-1]["id"]}

    # Notifications racing the backlog read are neither lost nor doubled.
    racing = asyncio.gather(
        *(notify.notify(user_id, "k", f"race {n}") for n in range(5))
    )
    ws2, frames2 = await user_socket(client, auth, last_id=missed[-1]["id"])
    await racing
    ids = [f["notification"]["id"] for f in frames2 if f["type"] == "notification"]
    while len(ids) < 5:
        ids.append((await next_json(ws2))["notification"]["id"])
    assert ids == sorted(ids) and len(set(ids)) == 5
    await ws.close()
    await ws2.close()


async def test_mark_read_one_and_all(client: TestClient) -> None:
    user_id = await make_user(client)
    auth = await phone_login(client)
    notify = client.app[NOTIFY]
    notes = [await notify.notify(user_id, "k", f"n{n}") for n in range(3)]
    ws, _ = await user_socket(client, auth)
    response = await client.post(
        f"/api/notifications/{notes[0]['id']}/read", headers=auth
    )
    assert (await response.json())["unread"] == 2
    assert (await next_json(ws)) == {"type": "read", "notification": notes[0]["id"]}
    await ws.send_json({"id": 1, "type": "mark_read", "notification": "all"})
    frames = [await next_json(ws), await next_json(ws)]
    assert {"type": "result", "id": 1, "result": {"marked": 2}} in frames
    assert (await notify.unread(user_id)) == 0
    missing = await client.post("/api/notifications/999999/read", headers=auth)
    assert_error(await missing.json(), "unknown_notification")
    await ws.close()


async def test_one_user_never_sees_another_users_notifications(
    client: TestClient,
) -> None:
    alice = await make_user(client, "alice")
    await make_user(client, "bob_b")
    bob = await phone_login(client, "bob_b")
    note = await client.app[NOTIFY].notify(alice, "k", "for alice only")
    assert (await client.get("/api/notifications", headers=bob)).status == 200
    assert (await (await client.get("/api/notifications", headers=bob)).json())[
        "items"
    ] == []
    stolen = await client.post(f"/api/notifications/{note['id']}/read", headers=bob)
    assert stolen.status == 404


async def test_socket_needs_a_user(client: TestClient) -> None:
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "auth", "token": "forged"})
    error = await next_json(ws)
    assert error["type"] == "error"
    await ws.receive(timeout=3)
    assert ws.close_code == protocol.CLOSE_UNAUTHORIZED


async def test_password_change_notifies(client: TestClient) -> None:
    user_id = await make_user(client)
    auth = await phone_login(client)
    ws, _ = await user_socket(client, auth)
    await client.post(
        "/api/me/password",
        headers=auth,
        json={
            "old_password": "correct horse battery",
            "new_password": "another fine secret",
        },
    )
    frame = await next_json(ws)
    assert frame["notification"]["title"] == "密码已修改"
    assert await client.app[AUTH].get_user(user_id) is not None
    await ws.close()


async def test_a_burst_is_written_together_in_order(client: TestClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    auth = await phone_login(client, "alice")
    ws, _ = await user_socket(client, auth)
    inserts: list[str] = []
    engine = client.app[ENGINE].sync_engine
    broker = client.app[BROKER]
    pushes: list[int] = []  # how many messages each publish carried

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO NOTIFICATIONS"):
            inserts.append(statement)

    async def publish_many(messages: Any, real: Any = broker.publish_many) -> None:
        pushes.append(len(messages))
        await real(messages)

    async def publish(channel: str, data: str, real: Any = broker.publish) -> None:
        if channel.startswith("notify:"):
            pushes.append(1)
        await real(channel, data)

    event.listen(engine, "before_cursor_execute", count)
    broker.publish_many, broker.publish = publish_many, publish  # type: ignore[method-assign]
    try:
        notes = await asyncio.gather(
            *(
                client.app[NOTIFY].notify(alice if i % 2 else bob, "security", f"#{i}")
                for i in range(40)
            )
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
        del broker.publish_many, broker.publish

    assert [n["title"] for n in notes] == [f"#{i}" for i in range(40)]
    ids = [n["id"] for n in notes]
    assert ids == sorted(ids) and len(set(ids)) == 40
    assert len(inserts) <= 2  # the first write alone, the other 39 together
    assert sum(pushes) == 40 and len(pushes) <= 2  # and pushed as they were written
    pushed = [(await next_json(ws))["notification"]["title"] for _ in range(20)]
    assert pushed == [f"#{i}" for i in range(1, 40, 2)]
    stored = await client.app[NOTIFY].after(alice, 0)
    assert [n["title"] for n in stored] == pushed
    await ws.close()


async def test_a_notice_the_broker_cannot_push_is_kept(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await make_user(client, "alice")
    broker = client.app[BROKER]

    async def down(messages: Any) -> None:
        raise Unavailable("The broker cannot be reached.")

    broker.publish_many = down  # type: ignore[method-assign]
    try:
        note = await client.app[NOTIFY].notify(alice, "security", "kept")
    finally:
        del broker.publish_many
    assert note["title"] == "kept"
    assert [n["id"] for n in await client.app[NOTIFY].after(alice, 0)] == [note["id"]]
    assert f"notifications {note['id']} stored but not pushed" in caplog.text


async def test_a_bad_row_fails_alone(client: TestClient) -> None:
    alice = await make_user(client, "alice")
    good, bad = await asyncio.gather(
        client.app[NOTIFY].notify(alice, "security", "fine"),
        client.app[NOTIFY].notify(alice + 1000, "security", "nobody"),  # no such user
        return_exceptions=True,
    )
    assert isinstance(good, dict) and good["title"] == "fine"
    assert isinstance(bad, Exception)
    assert [n["title"] for n in await client.app[NOTIFY].after(alice, 0)] == ["fine"]


async def test_a_qr_login_tells_the_phone(client: TestClient) -> None:
    await make_user(client, "alice")
    auth = await phone_login(client, "alice")
    ws, _ = await user_socket(client, auth)
    session = await new_session(client)
    page = await watch(client, session)
    await next_frame(page)
    for action in ("scan", "confirm"):
        assert (await phone(client, action, session["id"], auth)).status == 200
        frame = await next_frame(page)
    redeemed = await client.post(
        f"/api/qr/sessions/{session['id']}/redeem",
        json={"ticket": frame["ticket"]},
        headers={
            "Authorization": f"Bearer {session['watch_token']}",
            "User-Agent": UA_CHROME,
        },
    )
    assert redeemed.status == 200, await redeemed.text()

    told = await next_json(ws)  # written within LINGER of the login
    assert told["notification"]["title"] == "新的扫码登录"
    assert "Chrome" in told["notification"]["body"]
    assert "127.0.0.1" in told["notification"]["body"]
    listed = await (await client.get("/api/notifications", headers=auth)).json()
    assert listed["items"][0]["id"] == told["notification"]["id"]
    await ws.close()
    await page.close()


async def test_queued_notices_share_one_write_and_survive_shutdown(
    client: TestClient,
) -> None:
    alice = await make_user(client, "alice")
    notify = client.app[NOTIFY]
    inserts: list[str] = []
    engine = client.app[ENGINE].sync_engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO NOTIFICATIONS"):
            inserts.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for i in range(30):
            notify.notify_soon(alice, "security", f"soon {i}")
            await asyncio.sleep(0)  # each on its own turn of the loop, as requests
        await notify.close()  # what shutdown does: nothing queued is dropped
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(inserts) == 1
    stored = await notify.after(alice, 0)
    assert [n["title"] for n in stored] == [f"soon {i}" for i in range(30)]


async def test_a_full_batch_of_queued_notices_is_written_at_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queued notices wait for company only while they are fewer than a batch, so
    under a steady stream of logins the queue drains as fast as it can be written
    rather than one batch per LINGER."""
    monkeypatch.setattr(server.notify.service, "LINGER", 30.0)
    alice = await make_user(client, "alice")
    notify = client.app[NOTIFY]
    batch = server.notify.service.BATCH
    for i in range(2 * batch + 5):
        notify.notify_soon(alice, "security", f"soon {i}")

    for _ in range(200):  # at most 10 s, far below LINGER
        await asyncio.sleep(0.05)
        if await notify.unread(alice) >= 2 * batch:
            break
    assert await notify.unread(alice) == 2 * batch  # the last five still linger
    await notify.close()
    assert await notify.unread(alice) == 2 * batch + 5
