"""What one rate-limit hit costs on the memory broker, by how many counters are live.

The embedded pair keeps its rate-limit counters in the limits library's memory
storage. Every phone and every address that was counted within the last windows
has a live counter; the bench's load comes from one address and 32 phones, so
its counters are few, while a busy day's are many. This prints the CPU time of
one hit of the sliding window limiter for a growing number of live counters, with
the library's storage as it comes and with the broker's (finding 17 in
docs/benchmarks.md).

Run: ``python -m loadtests.limiter`` (a few seconds; ``--hits`` per measurement).
``--server`` measures the same through a running embedded server: server CPU per
``POST /api/qr/sessions`` after few and after many distinct addresses have been
counted (it trusts one X-Forwarded-For hop to have them; about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp
from limits import parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from loadtests.processes import ServerSpec, start_server
from loadtests.report import markdown_table
from server.broker.memory import LimitsStorage

LIMIT = parse("1000000/minute")


async def cpu_per_hit(storage: Storage, live: int, hits: int) -> float:
    """Microseconds of CPU per hit once live counters exist, the loop turning between
    hits as a server's does (the library's sweep runs in a task of its own)."""
    limiter = SlidingWindowCounterRateLimiter(storage)
    for number in range(live):
        await limiter.hit(LIMIT, "scan", f"phone{number}")
    await asyncio.sleep(0.01)
    start = time.process_time()
    for number in range(hits):
        await limiter.hit(LIMIT, "scan", f"phone{number % 50}")
        await asyncio.sleep(0)
    spent = time.process_time() - start
    await asyncio.sleep(0.01)
    return spent / hits * 1e6


async def measure(counts: list[int], hits: int) -> list[tuple[int, float, float]]:
    """(live counters, µs a hit with the library's storage, µs with the broker's)."""
    rows = []
    for live in counts:
        library = await cpu_per_hit(MemoryStorage(), live, hits)
        broker = await cpu_per_hit(LimitsStorage(), live, hits)
        rows.append((live, library, broker))
    return rows


async def through_server(
    addresses: list[int], creates: int, workdir: Path
) -> list[tuple[int, float]]:
    """(addresses counted so far, server CPU µs per QR creation) on one server."""
    spec = ServerSpec("embedded-1", "SQLite + memory, 1 worker", "qrlogin")
    server = start_server(
        spec, workdir, qr_lifetime=900.0, extra_env={"QRLOGIN_FORWARDED_HOPS": "1"}
    )
    rows = []
    try:
        await server.wait_ready()
        url = f"{server.base_url}/api/qr/sessions"
        async with aiohttp.ClientSession() as http:

            async def create(address: int) -> None:
                ip = f"10.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"
                async with http.post(url, headers={"X-Forwarded-For": ip}) as reply:
                    if reply.status != 201:
                        raise RuntimeError(f"create answered {reply.status}")

            for address in range(creates // 4):  # warm up
                await create(address % 10)
            counted = 0
            for wanted in addresses:
                for start in range(counted, wanted, 50):
                    await asyncio.gather(
                        *(create(a) for a in range(start, min(start + 50, wanted)))
                    )
                counted = wanted
                before = server.cpu_seconds()
                for address in range(creates):  # one at a time, as on a quiet day
                    await create(address % 10)
                rows.append((counted, (server.cpu_seconds() - before) / creates * 1e6))
    finally:
        server.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: measure and print a Markdown table."""
    cli = argparse.ArgumentParser(
        prog="python -m loadtests.limiter", description=__doc__.splitlines()[0]
    )
    cli.add_argument("--hits", type=int, default=2000, help="hits per measurement")
    cli.add_argument(
        "--server", action="store_true", help="measure through an embedded server"
    )
    args = cli.parse_args(argv)
    if args.server:
        with tempfile.TemporaryDirectory(prefix="qrlogin-limiter-") as workdir:
            rows = asyncio.run(through_server([10, 10_000], 2000, Path(workdir)))
        head = ("addresses counted", "server CPU per QR creation")
        print(markdown_table(head, [(f"{n:,}", f"{us:,.0f} µs") for n, us in rows]))
        return 0
    measured = asyncio.run(measure([10, 1000, 10_000, 50_000], args.hits))
    head = ("live counters", "limits' MemoryStorage", "the memory broker's")
    cells = [
        (f"{n:,}", f"{lib:,.1f} µs", f"{ours:,.1f} µs") for n, lib, ours in measured
    ]
    print(markdown_table(head, cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
