"""The broker contract, run against the memory broker and Redis alike."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from server.broker import Broker, create_broker
from server.broker.hub import Hub
from server.broker.redis import PROBE_INTERVAL, RedisBroker, stop
from tests.conftest import REDIS_URL, FakeClock, clean_redis


@pytest.fixture
async def broker(backend: str) -> AsyncIterator[Broker]:
    if backend == "redis":
        await clean_redis()
    the_broker = create_broker(REDIS_URL if backend == "redis" else "", clock=time.time)
    await the_broker.start()
    try:
        yield the_broker
    finally:
        await the_broker.close()


async def test_keys_expire(broker: Broker) -> None:
    assert await broker.put("t:a", "1", ttl=0.2)
    assert await broker.get("t:a") == "1"
    await asyncio.sleep(0.35)
    assert await broker.get("t:a") is None


async def test_only_new_refuses_an_existing_key(broker: Broker) -> None:
    assert await broker.put("t:a", "1", ttl=5, only_new=True)
    assert not await broker.put("t:a", "2", ttl=5, only_new=True)
    assert await broker.get("t:a") == "1"


async def test_take_hands_a_value_to_exactly_one_caller(broker: Broker) -> None:
    await broker.put("t:once", "secret", ttl=5)
    results = await asyncio.gather(*(broker.take("t:once") for _ in range(10)))
    assert results.count("secret") == 1 and results.count(None) == 9


async def test_sets_keep_members_and_grow_their_ttl(broker: Broker) -> None:
    await broker.add_member("t:set", "a", ttl=0.3)
    await broker.add_member("t:set", "b", ttl=5)
    await broker.remove_member("t:set", "a")
    await asyncio.sleep(0.4)
    assert await broker.members("t:set") == {"b"}


async def test_set_members_expire_one_by_one(broker: Broker) -> None:
    """A user's set of sessions forgets ended ones without anyone removing them."""
    await broker.add_member("t:sessions", "old", ttl=0.2)
    await broker.add_member("t:sessions", "new", ttl=5)
    await asyncio.sleep(0.3)
    assert await broker.members("t:sessions") == {"new"}


async def test_a_member_and_its_value_are_stored_together(broker: Broker) -> None:
    await broker.add_member("t:index", "s1", ttl=0.3, put=("t:s1", "record"))
    assert await broker.get("t:s1") == "record"
    assert await broker.members("t:index") == {"s1"}
    await asyncio.sleep(0.4)
    assert await broker.get("t:s1") is None
    assert await broker.members("t:index") == set()


async def test_transition_is_compare_and_set_and_publishes(broker: Broker) -> None:
    hub = Hub(broker)
    seen: list[str | None] = []
    await hub.add("t:doc", seen.append)
    await broker.put("t:doc", json.dumps({"state": "a", "version": 1}), ttl=5)

    ok, doc = await broker.transition(
        "t:doc", allowed=("b",), changes={"state": "c"}, channel="t:doc"
    )
    assert not ok and doc == {"state": "a", "version": 1}
    ok, doc = await broker.transition(
        "t:doc", allowed=("a",), changes={"state": "b", "x": None}, channel="t:doc"
    )
    assert ok and doc == {"state": "b", "version": 2, "x": None}
    assert [json.loads(s)["version"] for s in seen] == [2]  # heard on this node at once
    missing = await broker.transition(
        "t:none", allowed=("a",), changes={}, channel="t:none"
    )
    assert missing == (False, None)

    await asyncio.sleep(0.2)  # the publish may come back as well: the same version
    assert {json.loads(s)["version"] for s in seen if s} == {2}
    await hub.remove("t:doc", seen.append)


async def test_text_beyond_ascii_comes_back_as_it_went_in(broker: Broker) -> None:
    hub = Hub(broker)
    seen: list[str | None] = []
    await hub.add("t:doc", seen.append)
    await broker.put("t:doc", json.dumps({"state": "a", "version": 1}), ttl=5)
    await broker.put("t:text", "压测用户 ✓", ttl=5)
    assert await broker.get("t:text") == "压测用户 ✓"
    assert await broker.take("t:text") == "压测用户 ✓"

    ok, doc = await broker.transition(
        "t:doc", allowed=("a",), changes={"state": "b", "name": "张*"}, channel="t:doc"
    )
    assert ok and doc is not None and doc["name"] == "张*"
    stored = await broker.get("t:doc")
    assert stored is not None and json.loads(stored)["name"] == "张*"
    assert seen and isinstance(seen[0], str) and json.loads(seen[0])["name"] == "张*"
    await hub.remove("t:doc", seen.append)


async def test_publish_many_delivers_each_in_order(broker: Broker) -> None:
    hub = Hub(broker)
    heard: list[tuple[str, str | None]] = []
    for channel in ("t:one", "t:two"):
        await hub.add(channel, lambda data, c=channel: heard.append((c, data)))
    await broker.publish_many(
        [("t:one", "1"), ("t:two", "2"), ("t:one", "3"), ("t:none", "4")]
    )
    await broker.publish_many([])
    for _ in range(50):
        if len(heard) == 3:
            break
        await asyncio.sleep(0.02)
    assert heard == [("t:one", "1"), ("t:two", "2"), ("t:one", "3")]


async def test_concurrent_transitions_have_one_winner(broker: Broker) -> None:
    await broker.put("t:race", json.dumps({"state": "pending", "version": 1}), ttl=5)
    results = await asyncio.gather(
        *(
            broker.transition(
                "t:race",
                allowed=("pending",),
                changes={"state": "scanned", "by": n},
                channel="t:race",
            )
            for n in range(20)
        )
    )
    assert sum(ok for ok, _ in results) == 1
    final = json.loads(await broker.get("t:race") or "{}")
    assert final["version"] == 2


async def test_transition_checks_fields_and_expiry_in_the_same_step(
    broker: Broker,
) -> None:
    doc = {"state": "scanned", "version": 2, "user_id": 7, "expires_at": 1000.5}
    await broker.put("t:doc", json.dumps(doc), ttl=5)
    move = {"allowed": ("scanned",), "changes": {"state": "confirmed"}}

    ok, current = await broker.transition(
        "t:doc", channel="t:c", match={"user_id": 8}, **move
    )
    assert not ok and current is not None and current["state"] == "scanned"
    ok, current = await broker.transition(
        "t:doc", channel="t:c", match={"user_id": 7}, alive_at=1000.5, **move
    )
    assert not ok and current is not None and current["version"] == 2
    ok, current = await broker.transition(
        "t:doc", channel="t:c", match={"user_id": 7}, alive_at=1000.25, **move
    )
    assert ok and current is not None
    assert (current["state"], current["version"]) == ("confirmed", 3)


async def test_a_burst_beyond_the_pool_waits_its_turn(broker: Broker) -> None:
    await broker.put("t:hot", "1", ttl=5)
    results = await asyncio.gather(*(broker.get("t:hot") for _ in range(1000)))
    assert results == ["1"] * 1000


async def test_hub_unsubscribes_after_the_last_listener(broker: Broker) -> None:
    hub = Hub(broker)
    got: list[str | None] = []
    first, second = got.append, lambda data: got.append(data)
    await hub.add("t:chan", first)
    await hub.add("t:chan", second)
    await hub.remove("t:chan", first)
    assert hub.channels == 1
    await hub.remove("t:chan", second)
    assert hub.channels == 0 and len(hub) == 0
    await broker.publish("t:chan", "late")
    await asyncio.sleep(0.1)
    assert got == []


def test_memory_broker_sweeps_expired_keys() -> None:
    """Abandoned keys do not pile up in a long-running process."""
    from server.broker.memory import MemoryBroker

    clock = FakeClock()
    broker = MemoryBroker(clock=clock)
    asyncio.run(broker.put("t:a", "1", ttl=10))
    asyncio.run(broker.put("t:b", "1", ttl=100))
    clock.advance(11)
    assert broker.sweep() == 1 and len(broker) == 1


async def test_memory_broker_trims_the_heap_after_a_large_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sweep that drops many keys gives the C heap's free pages back; a small
    one does not pay for the walk of the heap."""
    from server.broker import memory

    trims: list[float] = []
    monkeypatch.setattr(memory, "SWEEP_INTERVAL", 0.01)
    monkeypatch.setattr(memory, "TRIM_AFTER", 50)
    monkeypatch.setattr(
        memory.memtrim, "release_free_memory", lambda: trims.append(1) or True
    )
    clock = FakeClock()
    broker = memory.MemoryBroker(clock=clock)

    async def expire(count: int) -> None:
        for number in range(count):
            await broker.put(f"t:{number}", "x", ttl=10)
        clock.advance(11)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not len(broker):
                break
        await asyncio.sleep(0.05)  # a trim would run in a thread meanwhile

    await broker.start()
    try:
        await expire(49)
        assert trims == []
        await expire(50)
        assert trims == [1]
    finally:
        await broker.close()


def test_memory_broker_lets_go_of_what_a_burst_grew() -> None:
    """Once a burst of keys and set members has expired and been swept, the
    broker holds about what it held before: a dict keeps the table it grew to
    unless it is copied."""
    from server.broker.memory import MemoryBroker

    clock = FakeClock()
    broker = MemoryBroker(clock=clock)

    async def burst() -> None:
        for number in range(20000):
            await broker.put(f"t:{number}", "x", ttl=10)
            await broker.add_member("t:set", f"m{number}", ttl=10)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(broker.put("t:keep", "1", ttl=1000))
        loop.run_until_complete(broker.add_member("t:set", "keep", ttl=1000))
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            loop.run_until_complete(burst())
            clock.advance(11)
            assert broker.sweep() == 20000
            left = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        # 0.9 MB without the copies; CPython keeps up to 2,000 freed tuples a size
        assert left < 256 * 1024, left
        assert loop.run_until_complete(broker.members("t:set")) == {"keep"}
    finally:
        loop.close()


def test_memory_broker_keeps_documents_at_their_utf8_size() -> None:
    """A kept str of Chinese text takes two bytes a character and grows a UTF-8
    copy once read; orjson's bytes keep a 4 KiB buffer. Neither may be kept."""
    from server.broker.memory import MemoryBroker

    doc = {"state": "scanned", "version": 1, "user_name": "压*1", "pad": "x" * 300}
    text = json.dumps(doc, ensure_ascii=False)

    async def keep(broker: MemoryBroker, count: int) -> None:
        for number in range(count):
            await broker.put(f"t:doc{number:04d}", text, ttl=60)
            await broker.transition(
                f"t:doc{number:04d}", allowed=("scanned",), changes={}, channel="t:c"
            )
            kept = await broker.get(f"t:doc{number:04d}")
            assert kept is not None and json.loads(kept)["user_name"] == "压*1"

    broker = MemoryBroker(clock=time.time)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        asyncio.run(keep(broker, 500))
        per_doc = (tracemalloc.get_traced_memory()[0] - before) / 500
    finally:
        tracemalloc.stop()
    # what else a key costs: its name, the (value, expiry) tuple, the dict's slot
    assert per_doc <= len(text.encode()) + 250


def test_memory_broker_sweeps_expired_set_members() -> None:
    """A user's set of sessions drops the ended ones even if nobody lists it."""
    from server.broker.memory import MemoryBroker

    clock = FakeClock()
    broker = MemoryBroker(clock=clock)
    for number in range(100):
        asyncio.run(broker.add_member("t:set", f"old{number}", ttl=10))
    asyncio.run(broker.add_member("t:set", "new", ttl=100))
    clock.advance(11)
    assert broker.sweep() == 0
    # members() prunes as it reads, so look at what the broker holds
    assert set(broker._data["t:set"][0]) == {"new"}


async def test_memory_limiter_does_not_sweep_on_every_hit() -> None:
    """The library's storage starts a task walking every counter after each hit;
    the broker's does not (a hit with 50,000 live counters cost 5.8 ms)."""
    from limits import parse
    from limits.aio.strategies import SlidingWindowCounterRateLimiter

    from server.broker.memory import LimitsStorage

    storage = LimitsStorage()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("3/minute")
    for number in range(200):
        assert await limiter.hit(item, "scan", f"user{number}")
    await asyncio.sleep(0)
    assert storage.timer is None  # the library's sweep was never scheduled
    # and the counts are the library's
    assert await limiter.hit(item, "scan", "user7")
    assert await limiter.hit(item, "scan", "user7")
    assert not await limiter.hit(item, "scan", "user7")


async def test_memory_broker_sweep_drops_expired_limiter_counters() -> None:
    from limits import parse
    from limits.aio.strategies import (
        MovingWindowRateLimiter,
        SlidingWindowCounterRateLimiter,
    )

    from server.broker.memory import MemoryBroker

    broker = MemoryBroker(clock=time.time)
    storage = broker.limits_storage()
    counter = SlidingWindowCounterRateLimiter(storage)
    moving = MovingWindowRateLimiter(storage)
    for number in range(10):
        assert await counter.hit(parse("5/minute"), "scan", f"old{number}")
    assert await counter.hit(parse("5/minute"), "scan", "new")
    for limit in ("5/second", "5/hour"):
        assert await moving.hit(parse(limit), "create", "ip")
    for key in list(storage.expirations):
        if "old" in key:
            storage.expirations[key] = time.time() - 1
    broker.sweep()
    assert [key for key in storage.storage if "old" in key] == []
    assert [key for key in storage.storage if "new" in key]
    assert len(storage.events) == 2
    storage.sweep(time.time() + 2)  # the 1-second window's entry is over
    assert len(storage.events) == 1
    storage.sweep(time.time() + 7200)
    assert not storage.events and not storage.storage and not storage.locks


async def test_dead_subscription_is_detected_and_rebuilt() -> None:
    """A subscription Redis dropped (PING still fine) is noticed by the probe."""
    await clean_redis()
    broker = RedisBroker(REDIS_URL)
    await broker.start()
    hub = Hub(broker)
    got: list[str | None] = []
    await hub.add("t:live", got.append)
    admin = redis.Redis.from_url(REDIS_URL)
    try:
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        deadline = asyncio.get_running_loop().time() + PROBE_INTERVAL * 8
        while (
            broker.resubscriptions == 0 and asyncio.get_running_loop().time() < deadline
        ):
            await asyncio.sleep(0.1)
        assert broker.resubscriptions >= 1
        assert None in got  # listeners were told to re-read
        await broker.publish("t:live", "after")
        for _ in range(50):
            if "after" in got:
                break
            await asyncio.sleep(0.05)
        assert "after" in got
    finally:
        await admin.aclose()
        await broker.close()


async def test_deployments_on_other_databases_do_not_hear_each_other() -> None:
    """Redis pub/sub ignores database numbers; the broker's channel prefix does not."""
    ours = RedisBroker(REDIS_URL)
    other_url = REDIS_URL.rsplit("/", 1)[0] + "/9"
    theirs = RedisBroker(other_url)
    await ours.start()
    await theirs.start()
    heard: list[str | None] = []
    try:
        hub = Hub(ours)
        await hub.add("notify:1", heard.append)
        await theirs.publish("notify:1", "not for you")
        await ours.publish("notify:1", "for you")
        for _ in range(50):
            if heard:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert heard == ["for you"]
    finally:
        await ours.close()
        await theirs.close()


async def test_broker_down_is_unavailable_not_a_crash() -> None:
    from server.errors import Unavailable

    broker = RedisBroker("redis://127.0.0.1:1/0")
    with pytest.raises(Unavailable):
        await broker.ping()
    await broker.close()


async def test_stopping_a_task_asks_again_when_a_cancellation_is_swallowed() -> None:
    """Closing never hangs on a background task that caught one cancellation."""

    async def stubborn() -> None:
        for _ in range(2):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(30)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await stop(task)
    assert task.done()


async def test_stopping_gives_up_on_a_task_that_never_ends(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A shutdown is not held forever: the task is left behind, with an error."""
    import server.broker.redis as redis_broker

    monkeypatch.setattr(redis_broker, "STOP_PATIENCE", 0.01)
    release = asyncio.Event()

    async def deaf() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    task = asyncio.create_task(deaf(), name="deaf")
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await stop(task)
    assert not task.done()
    assert "background task deaf did not stop" in caplog.text
    release.set()
    await task
