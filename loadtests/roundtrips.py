"""What a Redis round trip costs this process, against what a command in it costs.

The PostgreSQL + Redis numbers in docs/benchmarks.md come down to this: on the
development machines a system call is expensive, and redis-py makes several for
every command it sends on its own (a write, a read, a turn of the event loop).
The same commands sent together in one pipeline share those calls. This prints
the CPU time of the measuring process per command, both ways, through the
server's own broker and through a plain redis-py client.

Run: ``python -m loadtests.roundtrips`` (Redis on 127.0.0.1:6379; it writes one
key in database 3, ``--redis-url`` picks another).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as redis

from server.broker.redis import RedisBroker

KEY = "roundtrips:doc"
DOC = '{"state":"scanned","version":2,"user_name":"' + "x" * 280 + '"}'


async def cpu_per_call(work: Callable[[], Awaitable[object]], count: int) -> float:
    """Microseconds of this process's CPU per call of work, after a warm-up."""
    for _ in range(count // 10):
        await work()
    start = time.process_time()
    for _ in range(count):
        await work()
    return (time.process_time() - start) / count * 1e6


async def measure(url: str, count: int, batch: int) -> list[tuple[str, float]]:
    """(what, µs of CPU per command) for each way of sending."""
    broker = RedisBroker(url)
    await broker.start()
    plain = redis.Redis.from_url(url, decode_responses=True)
    notices = [(f"roundtrips:{i % 32}", DOC) for i in range(batch)]

    async def pipelined_gets() -> None:
        async with plain.pipeline(transaction=False) as pipe:
            for _ in range(batch):
                pipe.get(KEY)
            await pipe.execute()

    async def published_one_by_one() -> None:
        for channel, data in notices:
            await broker.publish(channel, data)

    try:
        await broker.put(KEY, DOC, ttl=60)
        rows = [
            ("GET, redis-py alone", await cpu_per_call(lambda: plain.get(KEY), count)),
            (
                "GET, through the broker",
                await cpu_per_call(lambda: broker.get(KEY), count),
            ),
            (
                f"GET, {batch} in one pipeline",
                await cpu_per_call(pipelined_gets, count // batch) / batch,
            ),
            (
                "PUBLISH, one round trip each",
                await cpu_per_call(published_one_by_one, count // batch) / batch,
            ),
            (
                f"PUBLISH, {batch} in one pipeline (publish_many)",
                await cpu_per_call(lambda: broker.publish_many(notices), count // batch)
                / batch,
            ),
        ]
        await broker.delete(KEY)
    finally:
        await plain.aclose()
        await broker.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    cli.add_argument("--count", type=int, default=5000, help="commands per row")
    cli.add_argument("--batch", type=int, default=50, help="commands per pipeline")
    args = cli.parse_args(argv)
    rows = asyncio.run(measure(args.redis_url, args.count, args.batch))
    width = max(len(what) for what, _ in rows)
    print(f"{'command':{width}}  CPU per command")
    for what, micros in rows:
        print(f"{what:{width}}  {micros:7.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
