"""Enterprise certification: one enterprise one user, unbind requests, staff review."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server.certification.service import Enterprise
from server.keys import AUTH, CERT, ENGINE, NOTIFY
from server.tables import users
from server.uscc import check_character, organisation_check_character
from tests.helpers import PASSWORD, assert_error, make_user, phone_login


def make_uscc(body: str = "12345678", prefix: str = "91110108") -> str:
    """A valid code around an eight-character organisation body."""
    first17 = prefix + body + organisation_check_character(body)
    return first17 + check_character(first17)


ACME = Enterprise(subject="yzt-1", name="北京示例科技有限公司", uscc=make_uscc())


async def user(
    client: TestClient, name: str, phone: str | None = None, **extra: Any
) -> Any:
    """Create a user and return it."""
    return await client.app[AUTH].create_user(
        username=name, password=PASSWORD, phone=phone, **extra
    )


async def test_binding_makes_an_enterprise_user(client: TestClient) -> None:
    alice = await user(client, "alice")
    auth = await phone_login(client, "alice")
    before = await (await client.get("/api/certification", headers=auth)).json()
    assert before == {"certified": False, "binding": None, "user_type": "individual"}
    await client.app[CERT].bind(alice, ACME)
    after = await (await client.get("/api/certification", headers=auth)).json()
    assert after["certified"] and after["user_type"] == "enterprise"
    assert after["binding"]["enterprise_name"] == ACME.name
    notes = await client.app[NOTIFY].latest(alice.id)
    assert notes[0]["title"] == "企业认证成功"


async def test_two_users_racing_for_one_enterprise(client: TestClient) -> None:
    """The partial unique index lets exactly one win; the other sees the next step."""
    racers = [await user(client, f"racer{n}") for n in range(4)]
    results = await asyncio.gather(
        *(client.app[CERT].bind(u, ACME) for u in racers), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    losers = [r for r in results if r is not None]
    assert {r.code for r in losers} == {"enterprise_taken"}
    assert (
        "该企业已被其他用户绑定" in losers[0].message
        and "解绑申请" in losers[0].message
    )


async def test_one_user_binds_one_enterprise(client: TestClient) -> None:
    alice = await user(client, "alice")
    await client.app[CERT].bind(alice, ACME)
    await client.app[CERT].bind(alice, ACME)  # again: nothing changes
    other = Enterprise(subject="yzt-2", name="另一家公司", uscc=make_uscc("87654321"))
    try:
        await client.app[CERT].bind(alice, other)
    except Exception as err:  # noqa: BLE001 - the code is what matters
        assert getattr(err, "code", "") == "already_certified"
    else:
        raise AssertionError("a second enterprise was bound")


async def file(client: TestClient, auth: dict[str, str], **changes: str) -> Any:
    body = {
        "enterprise_name": ACME.name,
        "uscc": ACME.uscc,
        "bind_account": "bob_b",
        "bind_phone": "13900000002",
        "unbind_account": "未知",
        "unbind_phone": "",
        **changes,
    }
    return await client.post("/api/unbind-requests", json=body, headers=auth)


async def test_unbind_request_fields_are_validated(client: TestClient) -> None:
    alice = await user(client, "alice")
    await client.app[CERT].bind(alice, ACME)
    await user(client, "bob_b", phone="13900000002")
    bob = await phone_login(client, "bob_b")
    bad = await file(
        client,
        bob,
        uscc=ACME.uscc[:-1] + ("0" if ACME.uscc[-1] != "0" else "1"),
        bind_phone="12345",
        bind_account="",
        enterprise_name="x",
    )
    assert bad.status == 422
    details = (await bad.json())["error"]["details"]
    assert set(details) == {"uscc", "bind_phone", "bind_account", "enterprise_name"}
    unbound = await file(client, bob, uscc=make_uscc("11111111"))
    assert_error(await unbound.json(), "not_bound")


async def test_review_approve_ends_the_old_binding(client: TestClient) -> None:
    alice = await user(client, "alice")
    await client.app[CERT].bind(alice, ACME)
    bob_user = await user(client, "bob_b", phone="13900000002")
    bob = await phone_login(client, "bob_b")
    await client.app[AUTH].create_user(
        username="staffer", password=PASSWORD, is_staff=True
    )
    staff = await phone_login(client, "staffer")

    filed = await file(client, bob)
    assert filed.status == 201
    request_id = (await filed.json())["id"]
    assert (await client.get("/api/staff/unbind-requests", headers=bob)).status == 403
    queue = (
        await (await client.get("/api/staff/unbind-requests", headers=staff)).json()
    )["items"]
    assert [(r["id"], r["holder"], r["unbind_account"]) for r in queue] == [
        (request_id, "alice", "未知")
    ]

    approved = await client.post(
        f"/api/staff/unbind-requests/{request_id}/approve", headers=staff
    )
    assert approved.status == 200
    again = await client.post(
        f"/api/staff/unbind-requests/{request_id}/approve", headers=staff
    )
    assert_error(await again.json(), "already_reviewed")
    assert (await client.app[AUTH].get_user(alice.id)).user_type == "individual"  # type: ignore[union-attr]
    await client.app[CERT].bind(bob_user, ACME)  # the requester may bind now
    titles = [n["title"] for n in await client.app[NOTIFY].latest(bob_user.id)]
    assert "解绑申请已通过" in titles
    assert "企业绑定已解除" in [
        n["title"] for n in await client.app[NOTIFY].latest(alice.id)
    ]


async def test_review_reject_keeps_the_binding_and_says_why(client: TestClient) -> None:
    alice = await user(client, "alice")
    await client.app[CERT].bind(alice, ACME)
    bob_user = await user(client, "bob_b", phone="13900000002")
    bob = await phone_login(client, "bob_b")
    await client.app[AUTH].create_user(
        username="staffer", password=PASSWORD, is_staff=True
    )
    staff = await phone_login(client, "staffer")
    request_id = (await (await file(client, bob)).json())["id"]
    empty = await client.post(
        f"/api/staff/unbind-requests/{request_id}/reject",
        json={"reason": ""},
        headers=staff,
    )
    assert empty.status == 422
    rejected = await client.post(
        f"/api/staff/unbind-requests/{request_id}/reject",
        json={"reason": "材料不全，请补充营业执照"},
        headers=staff,
    )
    assert rejected.status == 200
    mine = (await (await client.get("/api/unbind-requests", headers=bob)).json())[
        "items"
    ]
    assert mine[0]["status"] == "rejected" and "营业执照" in mine[0]["reject_reason"]
    assert (await client.app[CERT].binding(alice.id)) is not None
    notes = await client.app[NOTIFY].latest(bob_user.id)
    assert notes[0]["title"] == "解绑申请未通过"


async def test_unfinished_orders_hold_a_request_back(client: TestClient) -> None:
    alice = await user(client, "alice")
    await client.app[CERT].bind(alice, ACME)
    await user(client, "bob_b", phone="13900000002")
    bob = await phone_login(client, "bob_b")
    await client.app[AUTH].create_user(
        username="staffer", password=PASSWORD, is_staff=True
    )
    staff = await phone_login(client, "staffer")
    async with client.app[ENGINE].begin() as conn:
        await conn.execute(
            sa.update(users).where(users.c.id == alice.id).values(unfinished_orders=2)
        )
    request_id = (await (await file(client, bob)).json())["id"]
    queue = (
        await (await client.get("/api/staff/unbind-requests", headers=staff)).json()
    )["items"]
    assert queue[0]["holder_unfinished_orders"] == 2
    held = await client.post(
        f"/api/staff/unbind-requests/{request_id}/approve", headers=staff
    )
    assert held.status == 409
    body = await held.json()
    assert_error(body, "held_back")
    assert body["error"]["details"] == {"unfinished_orders": 2}
    assert (await client.app[CERT].binding(alice.id)) is not None


async def test_staff_command_creates_a_staff_account(client: TestClient) -> None:
    staff = await client.app[AUTH].create_user(
        username="staffer", password=PASSWORD, is_staff=True
    )
    plain = await make_user(client, "plain")
    assert staff.is_staff
    assert not (await client.app[AUTH].get_user(plain)).is_staff  # type: ignore[union-attr]
