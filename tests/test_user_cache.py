"""The per-process copy of users: the phone's calls skip the database, and no node
keeps answering with a user that has changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event

from server.app import create_app
from server.auth.service import User
from server.auth.usercache import UserCache
from server.broker.hub import Hub
from server.broker.memory import MemoryBroker
from server.certification.service import Enterprise
from server.keys import AUTH, CERT, ENGINE
from server.settings import Settings
from tests.conftest import FakeClock
from tests.helpers import make_user, new_session, phone, phone_login
from tests.identity_helpers import make_uscc


@contextmanager
def users_queries(client: TestClient) -> Iterator[list[str]]:
    """Collect the SQL statements that read or write the users table."""
    seen: list[str] = []
    engine = client.app[ENGINE].sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if " users" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_phone_steps_do_not_read_the_users_table(client: TestClient) -> None:
    await make_user(client, "alice", display_name="张小三")
    auth = await phone_login(client)
    warm = await new_session(client)
    assert (await phone(client, "scan", warm["id"], auth)).status == 200

    session = await new_session(client)
    with users_queries(client) as seen:
        assert (await phone(client, "scan", session["id"], auth)).status == 200
        assert (await phone(client, "confirm", session["id"], auth)).status == 200
    assert seen == []


async def test_a_renamed_user_is_shown_by_the_next_scan(client: TestClient) -> None:
    await make_user(client, "alice", display_name="张小三")
    auth = await phone_login(client)
    first = await new_session(client)
    body = await (await phone(client, "scan", first["id"], auth)).json()
    assert body["state"] == "scanned"

    renamed = await client.patch(
        "/api/me", json={"display_name": "李四光明"}, headers=auth
    )
    assert renamed.status == 200, await renamed.text()

    second = await new_session(client)
    assert (await phone(client, "scan", second["id"], auth)).status == 200
    state = await (
        await client.get(
            f"/api/qr/sessions/{second['id']}",
            headers={"Authorization": f"Bearer {second['watch_token']}"},
        )
    ).json()
    assert state["user"]["name"] == "李**明"


async def test_certification_is_seen_at_once(client: TestClient) -> None:
    user_id = await make_user(client, "alice")
    auth = await phone_login(client)
    me = await (await client.get("/api/me", headers=auth)).json()
    assert me["user_type"] == "individual"

    user = await client.app[AUTH].get_user(user_id)
    assert user is not None
    enterprise = Enterprise(
        subject="e-1", name="北京示例科技有限公司", uscc=make_uscc()
    )
    await client.app[CERT].bind(user, enterprise)

    me = await (await client.get("/api/me", headers=auth)).json()
    assert me["user_type"] == "enterprise"


@asynccontextmanager
async def second_node(settings: Settings) -> AsyncIterator[TestClient]:
    """Another app on the same database and broker, as a second server would be."""
    app = create_app(settings.model_copy(update={"port": 0}), migrate=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as other:
        yield other


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_change_on_one_node_drops_the_copy_on_another(
    client: TestClient,
) -> None:
    user_id = await make_user(client, "alice", display_name="张小三")
    settings = client.app[AUTH].settings
    async with second_node(settings) as other:
        cached = await other.app[AUTH].get_user(user_id)
        assert cached is not None and cached.display_name == "张小三"
        assert other.app[AUTH].users.get(user_id) is not None

        user = await client.app[AUTH].get_user(user_id)
        assert user is not None
        await client.app[AUTH].update_profile(user, display_name="李四")

        for _ in range(100):  # the message crosses Redis; the TTL is 60 s
            if other.app[AUTH].users.get(user_id) is None:
                break
            await asyncio.sleep(0.02)
        seen = await other.app[AUTH].get_user(user_id)
        assert seen is not None and seen.display_name == "李四"


# -- the cache on its own --------------------------------------------------------


def user(user_id: int = 1, name: str = "张小三") -> User:
    return User(
        id=user_id,
        username=f"user{user_id}",
        phone=None,
        email=None,
        display_name=name,
        avatar_url="",
        user_type="individual",
    )


@pytest.fixture
async def cache_parts() -> AsyncIterator[tuple[UserCache, FakeClock, Hub]]:
    clock = FakeClock()
    broker = MemoryBroker(clock=clock)
    hub = Hub(broker)
    await broker.start()
    cache = UserCache(broker, hub, clock, ttl=60, size=3)
    await cache.start()
    yield cache, clock, hub
    await cache.close()
    await broker.close()


async def test_a_read_that_raced_a_change_is_not_kept(
    cache_parts: tuple[UserCache, FakeClock, Hub],
) -> None:
    cache, _, _ = cache_parts
    generation = cache.generation  # a reader starts its query ...
    await cache.changed(1)  # ... the row changes meanwhile ...
    cache.keep(user(1, "old"), generation)  # ... and the old row comes back
    assert cache.get(1) is None

    cache.keep(user(1, "new"), cache.generation)
    kept = cache.get(1)
    assert kept is not None and kept.display_name == "new"


async def test_entries_expire_and_the_size_is_bounded(
    cache_parts: tuple[UserCache, FakeClock, Hub],
) -> None:
    cache, clock, _ = cache_parts
    for user_id in (1, 2, 3):
        cache.keep(user(user_id), cache.generation)
    assert cache.get(1) is not None  # 1 is now the most recently used
    cache.keep(user(4), cache.generation)
    assert len(cache) == 3
    assert cache.get(2) is None
    assert cache.get(1) is not None

    clock.advance(61)
    assert cache.get(1) is None
    assert cache.get(4) is None


async def test_lost_messages_empty_the_cache(
    cache_parts: tuple[UserCache, FakeClock, Hub],
) -> None:
    cache, _, hub = cache_parts
    cache.keep(user(1), cache.generation)
    cache.keep(user(2), cache.generation)
    before = cache.generation
    hub.resync()  # what the broker says after rebuilding a silent subscription
    assert len(cache) == 0
    assert cache.generation > before


async def test_a_change_heard_from_another_node_drops_the_entry(
    cache_parts: tuple[UserCache, FakeClock, Hub],
) -> None:
    cache, _, hub = cache_parts
    cache.keep(user(1), cache.generation)
    cache.keep(user(2), cache.generation)
    hub.dispatch("users:changed", "2")
    hub.dispatch("users:changed", "not a number")
    assert cache.get(1) is not None
    assert cache.get(2) is None
