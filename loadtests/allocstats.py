"""Where the embedded server's resident memory is, before and after many flows.

The growth phase of the benchmark reads only the resident size. This runs the
same kind of load against an embedded server that answers SIGUSR1 by writing
its allocators' own accounts as one JSON line: CPython's small-object
allocator (its 1 MiB arenas, the bytes in blocks in use), glibc's malloc
(its heaps, in use and free) and SQLite's (its page caches). The three
readings, after the first 1,000 flows, right after the rest and after the
settle wait, tell memory that is still held by objects from memory that is
free but not given back.

Run: ``python -m loadtests.allocstats`` (about 4 minutes; ``--seconds``
sets the length of the load, ``--settle`` the idle wait after it, and
``--census`` adds the counts of ``loadtests/census.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from loadtests import census
from loadtests.bench import (
    ACCOUNT_PREFIX,
    GROWTH_SESSION_TTL,
    GROWTH_SETTLE,
    PASSWORD,
    QR_LIFETIME,
    RSS_SETTLE,
    login_phones,
)
from loadtests.client import Client, run_closed_loop
from loadtests.processes import (
    ServerSpec,
    create_accounts,
    raise_fd_limit,
    start_server,
)

STATS_ENV = "QRLOGIN_ALLOCSTATS_FILE"
CENSUS_ENV = "QRLOGIN_ALLOCSTATS_CENSUS"
CONCURRENCY = 32
FIRST = 1000
MIB = 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena ordblks smblks hblks hblkd usmblks fsmblks uordblks fordblks "
            "keepcost"
        ).split()
    ]


def pymalloc_stats() -> dict[str, int]:
    """Arenas and block bytes from sys._debugmallocstats, which writes to fd 2."""
    with tempfile.TemporaryFile("w+") as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read()
    wanted = {
        "# arenas allocated current": "arenas",
        "# arenas reclaimed": "arenas_reclaimed",
        "# bytes in allocated blocks": "blocks_in_use",
        "# bytes in available blocks": "blocks_free",
    }
    stats = {}
    for line in text.splitlines():
        label, _, value = line.partition("=")
        label = label.strip()
        if label in wanted or (label == "Total" and "arena_bytes" not in stats):
            # The first "Total" sums the arenas' own sizes.
            stats[wanted.get(label, "arena_bytes")] = int(value.replace(",", ""))
    return stats


def malloc_stats() -> dict[str, int]:
    """glibc's mallinfo2 over all its arenas, and SQLite's own count."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    sqlite = ctypes.CDLL("libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    return {
        "malloc_heaps": info.arena,
        "malloc_mmapped": info.hblkd,
        "malloc_in_use": info.uordblks,
        "malloc_free": info.fordblks,
        "sqlite_in_use": sqlite.sqlite3_memory_used(),
    }


def rss() -> int:
    """This process's resident size, from /proc."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def serve() -> int:
    """The server, in this process, with the SIGUSR1 handler installed."""
    target = Path(os.environ[STATS_ENV])
    first: census.Census | None = None  # the first reading's census, with --census

    def write_stats(_signum: int, _frame: object) -> None:
        nonlocal first
        gc.collect()
        reading: dict[str, Any] = {"rss": rss(), **pymalloc_stats(), **malloc_stats()}
        if os.environ.get(CENSUS_ENV):
            now = census.take()
            if first is None:
                first = now
            else:
                reading["census"] = census.compare(first, now)
        with target.open("a") as out:
            out.write(json.dumps(reading) + "\n")

    signal.signal(signal.SIGUSR1, write_stats)
    from server.cli import main

    return main(["serve", "--workers", "1"])


class _StatsServer(ServerSpec):
    """The embedded pair, started through serve() above."""

    def command(self, port: int, *, qr_lifetime: float) -> list[str]:
        return [sys.executable, "-m", "loadtests.allocstats", "--serve"]


async def reading(stats_file: Path, pid: int) -> dict[str, Any]:
    """Ask the server for its accounts and wait for the line."""
    lines = len(stats_file.read_text().splitlines()) if stats_file.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    for _ in range(600):
        await asyncio.sleep(0.1)
        if stats_file.exists():
            now = stats_file.read_text().splitlines()
            if len(now) > lines:
                return dict(json.loads(now[-1]))
    raise TimeoutError("the server wrote no allocator statistics")


async def measure(
    seconds: float,
    settle: float,
    workdir: Path,
    *,
    first_flows: int = FIRST,
    with_census: bool = False,
) -> list[tuple[str, int, dict[str, Any]]]:
    """(moment, flows so far, reading) after the first flows, the rest, the settle."""
    raise_fd_limit()
    spec = _StatsServer("embedded-1", "SQLite + memory, 1 worker", "qrlogin")
    usernames = [f"{ACCOUNT_PREFIX}{i:04d}" for i in range(1, CONCURRENCY + 1)]
    await asyncio.to_thread(create_accounts, spec, workdir, usernames, PASSWORD)
    stats_file = workdir / "allocstats.jsonl"
    server = start_server(
        spec,
        workdir,
        qr_lifetime=QR_LIFETIME,
        extra_env={
            "QRLOGIN_SESSION_TTL": GROWTH_SESSION_TTL,
            STATS_ENV: str(stats_file),
            CENSUS_ENV: "1" if with_census else "",
        },
    )
    readings = []
    try:
        await server.wait_ready()
        client = Client(server.base_url)
        try:
            phones = await login_phones(client, usernames, spec.label)
            first = await run_closed_loop(
                client,
                phones,
                concurrency=CONCURRENCY,
                total=first_flows,
                duration=300.0,
            )
            await asyncio.sleep(RSS_SETTLE)
            pid = server.process.pid
            readings.append(
                (
                    "after the first flows",
                    first.completed,
                    await reading(stats_file, pid),
                )
            )
            rest = await run_closed_loop(
                client, phones, concurrency=CONCURRENCY, total=10**9, duration=seconds
            )
            flows = first.completed + rest.completed
            await asyncio.sleep(RSS_SETTLE)
            readings.append(
                ("right after the rest", flows, await reading(stats_file, pid))
            )
            await asyncio.sleep(settle)
            readings.append(
                (f"after {settle:.0f} s idle", flows, await reading(stats_file, pid))
            )
        finally:
            await client.close()
    finally:
        server.stop()
    return readings


ROWS = [
    ("resident size", "rss"),
    ("pymalloc arenas", "arena_bytes"),
    ("  of them, bytes in blocks in use", "blocks_in_use"),
    ("  bytes in free blocks of used pools", "blocks_free"),
    ("malloc heaps", "malloc_heaps"),
    ("  in use", "malloc_in_use"),
    ("  free, not given back", "malloc_free"),
    ("malloc's own mmaps", "malloc_mmapped"),
    ("  of all malloc'd, SQLite's", "sqlite_in_use"),
]


def table(readings: list[tuple[str, int, dict[str, Any]]]) -> str:
    """A Markdown table, one column a reading."""
    head = (
        "| MiB | "
        + " | ".join(f"{moment} ({flows:,} flows)" for moment, flows, _ in readings)
        + " |"
    )
    rule = "|---|" + "---|" * len(readings)
    lines = [head, rule]
    for label, field in ROWS:
        cells = [f"{reading[field] / MIB:.1f}" for _, _, reading in readings]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    reclaimed = readings[-1][2].get("arenas_reclaimed", 0)
    lines.append(
        f"\npymalloc arenas given back to the system during the run: {reclaimed}"
    )
    for moment, _, reading in readings:
        if "census" in reading:
            lines.append(census_text(moment, reading["census"]))
    return "\n".join(lines)


def census_text(moment: str, found: dict[str, Any]) -> str:
    """One reading's census against the first, as text."""
    grown = ", ".join(
        f"{name} {count:+,} ({size / MIB:+.1f} MiB)"
        for name, count, size in found["grown"]
    )
    stranded = ", ".join(f"{name} {count:,}" for name, count in found["stranded_types"])
    return (
        f"\n{moment}, against the first reading:\n"
        f"- grown most: {grown or 'nothing'}\n"
        f"- {found['stranded']:,} small objects in {found['new_windows']} windows of"
        f" 1 MiB that held none: {stranded or 'none'}"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: measure and print, or (--serve) be the server."""
    cli = argparse.ArgumentParser(
        prog="python -m loadtests.allocstats", description=__doc__.splitlines()[0]
    )
    cli.add_argument(
        "--seconds",
        type=float,
        default=100.0,
        help="length of the load after the first flows",
    )
    cli.add_argument(
        "--settle",
        type=float,
        default=GROWTH_SETTLE,
        help="idle wait before the last reading",
    )
    cli.add_argument(
        "--census",
        action="store_true",
        help="also count the server's objects by type and where they sit (slow)",
    )
    cli.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = cli.parse_args(argv)
    if args.serve:
        return serve()
    with tempfile.TemporaryDirectory(prefix="qrlogin-allocstats-") as workdir:
        readings = asyncio.run(
            measure(args.seconds, args.settle, Path(workdir), with_census=args.census)
        )
    print(table(readings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
