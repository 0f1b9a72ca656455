"""The QR login benchmark: qrlogin in three configurations beside a bare baseline.

Run from the repository root::

    python -m loadtests.bench            # the full run, about 20 minutes
    python -m loadtests.bench --quick    # a smoke run of every phase, about 6 minutes
    python -m loadtests.bench --growth-only --growth-seconds 1800  # 100,000 flows

It starts every server itself (the baseline, then qrlogin on SQLite + memory with
one worker, on PostgreSQL + Redis with one worker and with two), creates the
phone accounts, measures with one asyncio client, writes the raw numbers to
``loadtests/results/`` and regenerates the results section of
``docs/benchmarks.md``. Only 127.0.0.1 is ever contacted, and every phase is
bounded in flows and in seconds.

Phases, per configuration:

1. idle latency: sequential flows, confirm→push p50/p99/p99.9;
2. saturation: full flows per second with a bounded number in flight;
3. loaded latency: confirm→push with flows arriving at half that rate;
4. fan-out: state frames per second to many watchers of many sessions;
5. memory: RSS per waiting page with N authenticated idle sockets (fresh server);
6. growth (embedded pair, full run): RSS after 100,000 flows against after 1,000.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python loadtests/bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from loadtests import report
from loadtests.client import (
    Client,
    FlowError,
    Phone,
    RunStats,
    Watcher,
    bounded_gather,
    run_closed_loop,
    run_open_loop,
)
from loadtests.processes import (
    ROOT,
    RunningServer,
    ServerSpec,
    create_accounts,
    raise_fd_limit,
    reset_postgres,
    reset_redis,
    start_server,
)

RESULTS = ROOT / "loadtests" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
PASSWORD = "bench-password-1"
ACCOUNT_PREFIX = "bench"
PG_DATABASE = "qrlogin_bench"
QR_LIFETIME = 900.0  # long enough that nothing expires during a phase
GROWTH_SETTLE = 95.0  # the finished-session grace (60 s) plus one sweep (30 s)
# Each redeem opens a browser session, kept for QRLOGIN_SESSION_TTL (8 h by
# default): state by design, about 0.7 KiB a flow. The growth phase shortens the
# TTL to the grace period so that this state, too, is gone after the settle wait,
# and whatever remains has accumulated per flow.
GROWTH_SESSION_TTL = "60"
RSS_SETTLE = 2.0  # seconds to let a server finish its work before reading RSS


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each phase does; the full and quick runs differ only here."""

    warmup_flows: int
    idle_flows: int
    concurrency: int
    saturation_flows: int
    saturation_seconds: float
    loaded_seconds: float
    memory_pages: int
    fanout_sessions: int
    fanout_watchers: int
    growth_flows: int
    growth_first: int
    growth_settle: float
    growth_seconds: float  # cap on the growth phase's flows, settle wait apart
    profile_seconds: float


FULL = Sizes(
    warmup_flows=300,
    idle_flows=1000,
    concurrency=32,
    saturation_flows=8000,
    saturation_seconds=20.0,
    loaded_seconds=15.0,
    memory_pages=10_000,
    fanout_sessions=250,
    fanout_watchers=20,
    growth_flows=100_000,
    growth_first=1000,
    growth_settle=GROWTH_SETTLE,
    growth_seconds=480.0,
    profile_seconds=15.0,
)
QUICK = Sizes(
    warmup_flows=100,
    idle_flows=200,
    concurrency=32,
    saturation_flows=1500,
    saturation_seconds=6.0,
    loaded_seconds=5.0,
    memory_pages=2000,
    fanout_sessions=50,
    fanout_watchers=10,
    growth_flows=3000,
    growth_first=1000,
    growth_settle=0.0,
    growth_seconds=60.0,
    profile_seconds=6.0,
)


def configurations(redis_db: int) -> list[ServerSpec]:
    """The baseline first, then qrlogin's three configurations."""
    pg = f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    return [
        ServerSpec("baseline", "baseline (bare aiohttp)", "baseline"),
        ServerSpec("embedded-1", "SQLite + memory, 1 worker", "qrlogin"),
        ServerSpec(
            "pg-redis-1", "PostgreSQL + Redis, 1 worker", "qrlogin", 1, pg, redis_url
        ),
        ServerSpec(
            "pg-redis-2", "PostgreSQL + Redis, 2 workers", "qrlogin", 2, pg, redis_url
        ),
    ]


# -- results -------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(fraction * len(sorted_values) + 0.4999999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(slots=True)
class Latency:
    """confirm→push in milliseconds, and the part after the server's transition."""

    samples: int
    errors: int
    p50: float
    p99: float
    p999: float
    max: float
    server_p50: float
    server_p99: float

    @classmethod
    def of(cls, stats: RunStats) -> Latency:
        """Summarise a run's flow timings."""
        push = sorted(t.push * 1000 for t in stats.timings)
        server = sorted(t.server_push * 1000 for t in stats.timings)
        return cls(
            samples=len(push),
            errors=stats.error_count,
            p50=percentile(push, 0.50),
            p99=percentile(push, 0.99),
            p999=percentile(push, 0.999),
            max=push[-1] if push else 0.0,
            server_p50=percentile(server, 0.50),
            server_p99=percentile(server, 0.99),
        )


@dataclass(slots=True)
class Throughput:
    """Full flows per second at saturation."""

    flows: int
    errors: dict[str, int]
    seconds: float
    rate: float
    concurrency: int
    server_cpu: float  # cores busy on average (1.0 = one core)
    client_cpu: float
    server_cpu_ms_per_flow: float


@dataclass(slots=True)
class Loaded:
    """confirm→push while flows arrive at a fixed share of the saturation rate."""

    target_rate: float
    achieved_rate: float
    shed: int
    latency: Latency


@dataclass(slots=True)
class Memory:
    """RSS of the server tree with N authenticated sockets waiting, in bytes."""

    pages: int
    opened: int
    failed: int
    idle_rss: int
    sessions_rss: int
    pages_rss: int
    per_page: float
    per_session: float
    per_socket: float
    open_seconds: float
    readyz: dict[str, Any]
    failures: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Fanout:
    """State frames per second delivered to watchers of many moving sessions."""

    sessions: int
    watchers_per_session: int
    frames_expected: int
    frames_received: int
    seconds: float
    frames_per_second: float
    server_cpu: float


@dataclass(slots=True)
class Growth:
    """RSS as flows accumulate, against RSS after the first ones."""

    flows: int
    errors: int
    first: int
    rss_first: int
    rss_end: int
    rss_settled: int
    settle_seconds: float
    checkpoints: list[tuple[int, int, float]] = field(default_factory=list)
    seconds: float = 0.0
    target: int = 0  # the flows asked for; fewer when the time cap ended the phase
    session_ttl: str = GROWTH_SESSION_TTL

    @property
    def growth(self) -> float:
        """Settled RSS over RSS after the first flows, minus one."""
        return self.rss_settled / self.rss_first - 1 if self.rss_first else 0.0


@dataclass(slots=True)
class Profile:
    """The hottest frames of one profiled phase."""

    phase: str
    samples: int
    top_self: list[tuple[str, float]]
    top_inclusive: list[tuple[str, float]]
    raw_files: list[str]


@dataclass(slots=True)
class ConfigResult:
    """Everything measured for one configuration."""

    key: str
    label: str
    workers: int
    idle: Latency | None = None
    throughput: Throughput | None = None
    loaded: Loaded | None = None
    fanout: Fanout | None = None
    memory: Memory | None = None
    growth: Growth | None = None
    profiles: list[Profile] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    noise: dict[str, float] = field(default_factory=dict)  # others' cores per phase


# -- helpers -------------------------------------------------------------------


def say(message: str) -> None:
    """Progress on stderr, with the time of day."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def settle_garbage() -> None:
    """Collect and freeze the client's garbage so a phase is not measuring it."""
    gc.collect()
    gc.freeze()


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, all processes)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


@contextlib.asynccontextmanager
async def cpu_meter(
    server: RunningServer | None, noise: dict[str, float] | None = None, phase: str = ""
) -> AsyncIterator[dict[str, float]]:
    """Measure CPU in cores (1.0 = one core busy) and wall time over a block.

    ``server`` and ``client`` are the two sides; ``others`` is every other
    process on the machine, the noise a shared box adds. With noise and phase,
    the others' share is also filed under the phase's name.
    """
    me = psutil.Process()
    client_start = sum(me.cpu_times()[:2])
    server_start = server.cpu_seconds() if server else 0.0
    machine_start = busy_seconds()
    wall_start = time.perf_counter()
    reading: dict[str, float] = {}
    yield reading
    wall = time.perf_counter() - wall_start or 1e-9
    client = sum(me.cpu_times()[:2]) - client_start
    server_seconds = (server.cpu_seconds() - server_start) if server else 0.0
    machine = busy_seconds() - machine_start
    reading["wall"] = wall
    reading["server_seconds"] = server_seconds
    reading["server"] = server_seconds / wall
    reading["client"] = client / wall
    reading["others"] = max(0.0, machine - client - server_seconds) / wall
    if noise is not None and phase:
        noise[phase] = round(reading["others"], 2)


async def wait_for_quiet(limit: float, patience: float) -> float:
    """Wait (at most patience seconds) until other processes use under limit cores.

    Returns the load seen last. The box is shared with whatever else runs on it;
    measuring while a test suite compiles next door would measure the neighbour.
    """
    deadline = time.monotonic() + patience
    while True:
        start, wall = busy_seconds(), time.perf_counter()
        await asyncio.sleep(2.0)
        load = (busy_seconds() - start) / (time.perf_counter() - wall)
        if load < limit or time.monotonic() >= deadline:
            if load >= limit:
                say(
                    f"  the machine is still busy ({load:.2f} cores by others); "
                    "measuring anyway, see the noise row"
                )
            return load
        say(f"  waiting for other processes to quieten ({load:.2f} cores busy)")


async def login_phones(
    client: Client, usernames: Sequence[str], kind: str
) -> list[Phone]:
    """Log every account in once (the baseline accepts any account)."""
    jobs = [partial(client.login, name, PASSWORD) for name in usernames]
    phones = await bounded_gather(jobs, concurrency=4)
    failed = [p for p in phones if isinstance(p, BaseException)]
    if failed:
        raise RuntimeError(
            f"{len(failed)} phone logins failed on {kind}: {failed[0]!r}"
        )
    return list(phones)


async def open_pages(
    client: Client, count: int, *, concurrency: int = 64
) -> tuple[list[dict[str, Any]], list[Watcher], int]:
    """Create count sessions and watch each; returns sessions, sockets, failures."""
    created = await bounded_gather(
        [client.create for _ in range(count)], concurrency=concurrency
    )
    sessions = [c for c in created if isinstance(c, dict)]
    results = await bounded_gather(
        [partial(client.watch, c) for c in sessions], concurrency=concurrency
    )
    watchers = [w for w in results if isinstance(w, Watcher)]
    return sessions, watchers, count - len(watchers)


def tally(results: Sequence[Any], into: dict[str, int]) -> None:
    """Count the exceptions among bounded_gather's results by stage or type."""
    for item in results:
        if isinstance(item, BaseException):
            name = item.stage if isinstance(item, FlowError) else type(item).__name__
            into[name] = into.get(name, 0) + 1


async def close_pages(watchers: Sequence[Watcher]) -> None:
    """Close many sockets, a batch at a time."""
    await bounded_gather([w.close for w in watchers], concurrency=256)


# -- phases --------------------------------------------------------------------


async def phase_idle(
    client: Client,
    phones: list[Phone],
    server: RunningServer,
    sizes: Sizes,
    noise: dict[str, float],
) -> Latency:
    """Sequential flows on an otherwise idle server."""
    settle_garbage()
    async with cpu_meter(server, noise, "idle"):
        stats = await run_closed_loop(
            client, phones[:1], concurrency=1, total=sizes.idle_flows, duration=120.0
        )
    return Latency.of(stats)


async def phase_saturation(
    client: Client,
    phones: list[Phone],
    server: RunningServer,
    sizes: Sizes,
    noise: dict[str, float],
) -> Throughput:
    """As many flows as the server completes with a bounded number in flight."""
    settle_garbage()
    async with cpu_meter(server, noise, "saturation") as cpu:
        stats = await run_closed_loop(
            client,
            phones,
            concurrency=sizes.concurrency,
            total=sizes.saturation_flows,
            duration=sizes.saturation_seconds,
        )
    return Throughput(
        flows=stats.completed,
        errors=stats.errors,
        seconds=stats.elapsed,
        rate=stats.rate,
        concurrency=sizes.concurrency,
        server_cpu=cpu["server"],
        client_cpu=cpu["client"],
        server_cpu_ms_per_flow=1000 * cpu["server_seconds"] / max(1, stats.completed),
    )


async def phase_loaded(
    client: Client,
    phones: list[Phone],
    server: RunningServer,
    rate: float,
    sizes: Sizes,
    noise: dict[str, float],
) -> Loaded:
    """Open-loop arrivals at half the saturation rate; confirm→push under load."""
    settle_garbage()
    target = max(1.0, rate / 2)
    async with cpu_meter(server, noise, "loaded"):
        stats = await run_open_loop(
            client,
            phones,
            rate=target,
            duration=sizes.loaded_seconds,
            max_in_flight=sizes.concurrency * 8,
        )
    return Loaded(
        target_rate=target,
        achieved_rate=stats.completed / stats.elapsed if stats.elapsed else 0.0,
        shed=stats.shed,
        latency=Latency.of(stats),
    )


async def phase_fanout(
    client: Client,
    phones: list[Phone],
    server: RunningServer,
    sizes: Sizes,
    noise: dict[str, float],
) -> Fanout:
    """Many watchers on many sessions; every scan and confirm fans out to them all.

    Each session gets W authenticated sockets; then every session is scanned and
    confirmed (two transitions, so 2 × W frames). The rate is frames received over
    the time from the first phone request to the last frame.
    """
    settle_garbage()
    per = sizes.fanout_watchers
    created = await bounded_gather(
        [client.create for _ in range(sizes.fanout_sessions)], concurrency=32
    )
    sessions = [c for c in created if isinstance(c, dict)]
    opened = await bounded_gather(
        [partial(client.watch, c) for c in sessions for _ in range(per)],
        concurrency=64,
    )
    watchers = [w for w in opened if isinstance(w, Watcher)]
    received = 0
    last = 0.0

    async def read_two(watcher: Watcher) -> None:
        nonlocal received, last
        for state in ("scanned", "confirmed"):
            frame = await watcher.expect(state, timeout=60.0)
            received += 1
            last = max(last, frame.at)

    readers = [asyncio.ensure_future(read_two(w)) for w in watchers]
    await asyncio.sleep(0.5)  # every reader is parked on its socket
    async with cpu_meter(server, noise, "fan-out") as cpu:
        start = time.perf_counter()

        async def move(index: int, session: dict[str, Any]) -> None:
            phone = phones[index % len(phones)]
            await client.phone(phone, session["id"], "scan")
            await client.phone(phone, session["id"], "confirm")

        await bounded_gather(
            [partial(move, i, s) for i, s in enumerate(sessions)],
            concurrency=16,
        )
        await asyncio.wait(readers, timeout=60.0)
    for reader in readers:
        reader.cancel()
    await close_pages(watchers)
    seconds = (last - start) if last > start else cpu["wall"]
    return Fanout(
        sessions=len(sessions),
        watchers_per_session=per,
        frames_expected=2 * len(watchers),
        frames_received=received,
        seconds=seconds,
        frames_per_second=received / seconds if seconds > 0 else 0.0,
        server_cpu=cpu["server"],
    )


async def phase_memory(
    client: Client, phones: list[Phone], server: RunningServer, sizes: Sizes
) -> Memory:
    """RSS per waiting page on a fresh server: sessions first, then their sockets."""
    await run_closed_loop(client, phones, concurrency=8, total=200, duration=60.0)
    settle_garbage()
    await asyncio.sleep(RSS_SETTLE)
    idle = server.rss()
    start = time.perf_counter()
    created = await bounded_gather(
        [client.create for _ in range(sizes.memory_pages)], concurrency=64
    )
    sessions = [c for c in created if isinstance(c, dict)]
    await asyncio.sleep(RSS_SETTLE)
    with_sessions = server.rss()
    opened = await bounded_gather(
        [partial(client.watch, c) for c in sessions], concurrency=128
    )
    watchers = [w for w in opened if isinstance(w, Watcher)]
    failures: dict[str, int] = {}
    tally(created, failures)
    tally(opened, failures)
    seconds = time.perf_counter() - start
    await asyncio.sleep(RSS_SETTLE)
    with_pages = server.rss()
    readyz = await server.readyz()
    await close_pages(watchers)
    count = max(1, len(watchers))
    return Memory(
        pages=sizes.memory_pages,
        opened=len(watchers),
        failed=sizes.memory_pages - len(watchers),
        idle_rss=idle,
        sessions_rss=with_sessions,
        pages_rss=with_pages,
        per_page=(with_pages - idle) / count,
        per_session=(with_sessions - idle) / max(1, len(sessions)),
        per_socket=(with_pages - with_sessions) / count,
        open_seconds=seconds,
        readyz=readyz,
        failures=failures,
    )


async def phase_growth(
    client: Client, phones: list[Phone], server: RunningServer, sizes: Sizes
) -> Growth:
    """RSS after the first flows, every tenth of the run, at the end and settled."""
    checkpoints: list[tuple[int, int, float]] = []
    start = time.perf_counter()
    deadline = start + sizes.growth_seconds
    first = await run_closed_loop(
        client,
        phones,
        concurrency=sizes.concurrency,
        total=sizes.growth_first,
        duration=300.0,
    )
    await asyncio.sleep(RSS_SETTLE)
    rss_first = server.rss()
    checkpoints.append((first.completed, rss_first, first.rate))
    say(f"  growth: {first.completed} flows, RSS {rss_first / 2**20:.1f} MiB")
    done, errors = first.completed, first.error_count
    step = max(sizes.growth_first, (sizes.growth_flows - sizes.growth_first) // 10)
    while done + errors < sizes.growth_flows:
        left = deadline - time.perf_counter()
        if left <= 0:
            say(
                f"  growth: time cap of {sizes.growth_seconds:.0f}s reached "
                f"at {done} flows"
            )
            break
        chunk = min(step, sizes.growth_flows - done - errors)
        stats = await run_closed_loop(
            client, phones, concurrency=sizes.concurrency, total=chunk, duration=left
        )
        done += stats.completed
        errors += stats.error_count
        rss = server.rss()
        checkpoints.append((done, rss, stats.rate))
        say(
            f"  growth: {done} flows ({errors} failed), RSS {rss / 2**20:.1f} MiB, "
            f"{stats.rate:.0f} flows/s"
        )
        if stats.completed == 0:
            break
    await asyncio.sleep(RSS_SETTLE)
    rss_end = server.rss()
    if sizes.growth_settle > 0:
        say(f"  growth: waiting {sizes.growth_settle:.0f}s for finished sessions to go")
        await asyncio.sleep(sizes.growth_settle)
    rss_settled = server.rss()
    return Growth(
        flows=done,
        errors=errors,
        first=first.completed,
        rss_first=rss_first,
        rss_end=rss_end,
        rss_settled=rss_settled,
        settle_seconds=sizes.growth_settle,
        checkpoints=checkpoints,
        seconds=time.perf_counter() - start,
        target=sizes.growth_flows,
    )


# -- profiling -----------------------------------------------------------------


def start_profilers(
    server: RunningServer, out: Path, phase: str
) -> list[tuple[Any, Path]]:
    """One py-spy per serving process, writing collapsed stacks until stopped."""
    pyspy = Path(sys.executable).with_name("py-spy")
    started = []
    for proc in server.workers():
        path = out / f"profile-{server.spec.key}-{phase}-{proc.pid}.txt"
        child = subprocess.Popen(
            [
                str(pyspy),
                "record",
                "--pid",
                str(proc.pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "--nonblocking",
                "--output",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append((child, path))
    return started


def stop_profilers(started: list[tuple[Any, Path]], phase: str) -> Profile:
    """Stop py-spy (it writes on SIGINT) and summarise the hottest frames."""
    for child, _ in started:
        child.send_signal(signal.SIGINT)
    for child, _ in started:
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
    stacks: list[tuple[list[str], int]] = []
    for _, path in started:
        if path.exists():
            stacks.extend(report.read_collapsed(path.read_text()))
    samples, top_self, top_inclusive = report.summarise_stacks(stacks)
    return Profile(
        phase, samples, top_self, top_inclusive, [str(p) for _, p in started]
    )


async def phase_profile(
    client: Client, phones: list[Phone], server: RunningServer, sizes: Sizes, out: Path
) -> list[Profile]:
    """Extra, unmeasured runs under py-spy: sequential flows, then saturation."""
    profiles = []
    started = start_profilers(server, out, "sequential")
    await asyncio.sleep(1.0)
    await run_closed_loop(
        client, phones[:1], concurrency=1, total=100_000, duration=sizes.profile_seconds
    )
    profiles.append(stop_profilers(started, "sequential"))
    started = start_profilers(server, out, "saturation")
    await asyncio.sleep(1.0)
    await run_closed_loop(
        client,
        phones,
        concurrency=sizes.concurrency,
        total=1_000_000,
        duration=sizes.profile_seconds,
    )
    profiles.append(stop_profilers(started, "saturation"))
    return profiles


# -- one configuration ---------------------------------------------------------


async def prepare_backends(spec: ServerSpec) -> None:
    """Fresh PostgreSQL database and Redis db for a configuration that uses them."""
    if spec.database_url:
        await reset_postgres(PG_DATABASE)
    if spec.broker_url:
        await reset_redis(spec.broker_url)


@contextlib.asynccontextmanager
async def serving(
    spec: ServerSpec, workdir: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[RunningServer]:
    """A started and ready server for the block; stopped after it."""
    server = start_server(spec, workdir, qr_lifetime=QR_LIFETIME, extra_env=extra_env)
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()


async def guarded(result: ConfigResult, name: str, work: Callable[[], Any]) -> Any:
    """Run one phase; a failure is recorded and the remaining phases go on."""
    try:
        return await work()
    except (TimeoutError, FlowError, RuntimeError, OSError) as err:
        say(f"  {name} failed: {err!r}")
        result.failures.append(f"{name}: {err!r}")
        return None


async def bench_config(
    spec: ServerSpec, sizes: Sizes, workdir: Path, args: argparse.Namespace
) -> ConfigResult:
    """Every phase for one configuration; memory and growth get fresh servers."""
    result = ConfigResult(spec.key, spec.label, spec.workers)
    say(f"== {spec.label}")
    await prepare_backends(spec)
    usernames = [f"{ACCOUNT_PREFIX}{i:04d}" for i in range(1, sizes.concurrency + 1)]
    create_accounts(spec, workdir, usernames, PASSWORD)

    async with serving(spec, workdir) as server:
        client = Client(server.base_url)
        try:
            phones = await login_phones(client, usernames, spec.label)
            await wait_for_quiet(args.quiet_cores, args.quiet_wait)
            await run_closed_loop(
                client, phones, concurrency=8, total=sizes.warmup_flows, duration=60.0
            )
            result.idle = await guarded(
                result,
                "idle latency",
                lambda: phase_idle(client, phones, server, sizes, result.noise),
            )
            if result.idle:
                say(
                    f"  idle confirm→push p50 {result.idle.p50:.2f} ms, "
                    f"p99 {result.idle.p99:.2f} ms, p99.9 {result.idle.p999:.2f} ms"
                )
            result.throughput = await guarded(
                result,
                "saturation",
                lambda: phase_saturation(client, phones, server, sizes, result.noise),
            )
            if result.throughput:
                say(
                    f"  saturation {result.throughput.rate:.0f} flows/s "
                    f"(server {result.throughput.server_cpu:.2f} cores, "
                    f"client {result.throughput.client_cpu:.2f})"
                )
                rate = result.throughput.rate
                result.loaded = await guarded(
                    result,
                    "loaded latency",
                    lambda: phase_loaded(
                        client, phones, server, rate, sizes, result.noise
                    ),
                )
                if result.loaded:
                    say(
                        f"  at {result.loaded.achieved_rate:.0f} flows/s confirm→push "
                        f"p99 {result.loaded.latency.p99:.2f} ms"
                    )
            result.fanout = await guarded(
                result,
                "fan-out",
                lambda: phase_fanout(client, phones, server, sizes, result.noise),
            )
            if result.fanout:
                say(
                    f"  fan-out {result.fanout.frames_per_second:.0f} frames/s "
                    f"({result.fanout.frames_received}/{result.fanout.frames_expected})"
                )
            if args.profile and spec.kind == "qrlogin":
                result.profiles = (
                    await guarded(
                        result,
                        "profile",
                        lambda: phase_profile(client, phones, server, sizes, args.out),
                    )
                    or []
                )
        finally:
            await client.close()

    async with serving(spec, workdir) as server:
        client = Client(server.base_url)
        try:
            phones = await login_phones(client, usernames[:4], spec.label)
            await wait_for_quiet(args.quiet_cores, args.quiet_wait)
            result.memory = await guarded(
                result, "memory", lambda: phase_memory(client, phones, server, sizes)
            )
            if result.memory:
                say(
                    f"  memory {result.memory.per_page / 1024:.1f} KiB "
                    "per waiting page "
                    f"({result.memory.opened} sockets)"
                )
        finally:
            await client.close()

    if spec.key == "embedded-1" and sizes.growth_flows > 0 and not args.skip_growth:
        await growth_on_fresh_server(spec, sizes, workdir, usernames, result)
    return result


async def growth_on_fresh_server(
    spec: ServerSpec,
    sizes: Sizes,
    workdir: Path,
    usernames: list[str],
    result: ConfigResult,
) -> None:
    """The growth phase on a server of its own, so earlier phases leave no trace."""
    async with serving(
        spec, workdir, {"QRLOGIN_SESSION_TTL": GROWTH_SESSION_TTL}
    ) as server:
        client = Client(server.base_url)
        try:
            phones = await login_phones(client, usernames, spec.label)
            result.growth = await guarded(
                result, "growth", lambda: phase_growth(client, phones, server, sizes)
            )
        finally:
            await client.close()


async def bench_growth_only(
    spec: ServerSpec, sizes: Sizes, workdir: Path
) -> ConfigResult:
    """Only the growth phase, for a 100,000-flow check longer than the full run."""
    result = ConfigResult(spec.key, spec.label, spec.workers)
    say(f"== {spec.label}: growth only, up to {sizes.growth_seconds:.0f}s")
    usernames = [f"{ACCOUNT_PREFIX}{i:04d}" for i in range(1, sizes.concurrency + 1)]
    create_accounts(spec, workdir, usernames, PASSWORD)
    await growth_on_fresh_server(spec, sizes, workdir, usernames, result)
    return result


# -- main ----------------------------------------------------------------------


def keep_log(source: Path, target: Path, *, lines: int = 400) -> None:
    """Keep what a post-mortem needs of a server log: its warnings and errors (the
    audit trail logs every event at INFO and would bury them), then its tail."""
    notable: list[str] = []
    tail: list[str] = []
    with open(source, errors="replace") as log:
        for line in log:
            if " INFO " not in line and len(notable) < lines:
                notable.append(line)
            tail.append(line)
            if len(tail) > 50:
                del tail[0]
    target.write_text(
        "".join(["# warnings and errors\n", *notable, "# last lines\n", *tail])
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    cli = argparse.ArgumentParser(
        prog="python -m loadtests.bench", description=__doc__.splitlines()[0]
    )
    cli.add_argument("--quick", action="store_true", help="a short smoke run")
    cli.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only these configurations (baseline, embedded-1, pg-redis-1, "
        "pg-redis-2); repeatable; the baseline always runs",
    )
    cli.add_argument("--redis-db", type=int, default=3, help="Redis db to use (not 15)")
    cli.add_argument(
        "--profile",
        action="store_true",
        help="after measuring, profile each qrlogin configuration with "
        "py-spy (unmeasured extra runs)",
    )
    cli.add_argument("--skip-growth", action="store_true", help="skip the growth phase")
    cli.add_argument(
        "--growth-only",
        action="store_true",
        help="run only the growth phase (embedded pair; the baseline is skipped)",
    )
    cli.add_argument(
        "--growth-seconds",
        type=float,
        help="cap on the growth phase (default 480, or 60 with --quick)",
    )
    cli.add_argument(
        "--no-docs",
        action="store_true",
        help="do not rewrite the results section of docs/benchmarks.md",
    )
    cli.add_argument("--memory-pages", type=int, help="override the waiting pages")
    cli.add_argument("--out", type=Path, default=RESULTS, help="raw results folder")
    cli.add_argument(
        "--quiet-cores",
        type=float,
        default=0.3,
        help="before each configuration, wait while other processes use more "
        "than this many cores (default 0.3)",
    )
    cli.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="longest such wait in seconds (default 60, or 10 with --quick)",
    )
    args = cli.parse_args(argv)
    if args.quiet_wait is None:
        args.quiet_wait = 10.0 if args.quick else 60.0
    if args.redis_db == 15:
        cli.error("Redis db 15 belongs to the test suite")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark every configuration; returns everything for the report."""
    sizes = QUICK if args.quick else FULL
    soft, _ = raise_fd_limit()
    pages = args.memory_pages or sizes.memory_pages
    if soft < pages + 512:  # one descriptor per page's socket, plus some to spare
        say(f"open-files limit {soft} is too low for {pages} pages; using fewer")
        pages = max(100, soft - 512)
    sizes = replace(sizes, memory_pages=pages)
    if args.growth_seconds:
        sizes = replace(sizes, growth_seconds=args.growth_seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only)
    results = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="qrlogin-bench-") as tmp:
        workdir = Path(tmp)
        for spec in configurations(args.redis_db):
            if args.growth_only:
                if spec.key == "embedded-1":
                    results.append(await bench_growth_only(spec, sizes, workdir))
                continue
            if wanted and spec.key not in wanted and spec.kind != "baseline":
                continue
            results.append(await bench_config(spec, sizes, workdir, args))
        for log in workdir.glob("*.log"):
            keep_log(log, args.out / log.name)
    return {
        "mode": "quick" if args.quick else "full",
        "command": " ".join(
            ["python -m loadtests.bench", shlex.join(sys.argv[1:])]
        ).strip(),
        "started": started,
        "seconds": time.time() - started,
        "sizes": asdict(sizes),
        "machine": await report.machine_info(args.redis_db),
        "configs": [asdict(r) for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    data = asyncio.run(run(args))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(data["started"]))
    raw = args.out / f"bench-{data['mode']}-{stamp}.json"
    raw.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    (args.out / "latest.json").write_text(raw.read_text())
    markdown = report.render(data)
    print(markdown)
    if not args.no_docs:
        report.write_section(DOC, markdown)
        say(f"wrote {DOC} and {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
