"""The round-trip measurement behind docs/benchmarks.md runs and leaves nothing."""

from __future__ import annotations

import redis.asyncio as redis

from loadtests.roundtrips import KEY, measure
from tests.conftest import REDIS_URL, clean_redis


async def test_roundtrips_measures_every_way_and_cleans_up() -> None:
    await clean_redis()
    rows = await measure(REDIS_URL, count=100, batch=10)
    assert [what for what, _ in rows] == [
        "GET, redis-py alone",
        "GET, through the broker",
        "GET, 10 in one pipeline",
        "PUBLISH, one round trip each",
        "PUBLISH, 10 in one pipeline (publish_many)",
    ]
    assert all(micros > 0 for _, micros in rows)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert not await client.exists(KEY)
    finally:
        await client.aclose()
