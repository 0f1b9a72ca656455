"""Start, watch and stop the servers under test, and prepare their backends.

Servers run as child processes with their output in a log file (never a pipe
nobody reads). Memory and CPU are read with psutil over the whole process tree,
so a ``--workers 2`` server counts both workers and its supervising parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_LIMIT = "100000000/minute"


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft open-files limit to its hard limit.

    Children inherit it, so calling this before starting servers covers them too.
    Returns the new (soft, hard) pair.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One configuration to benchmark."""

    key: str  # short id used in file names and tables
    label: str  # what the table says
    kind: str  # "qrlogin" or "baseline"
    workers: int = 1
    database_url: str = ""  # empty: embedded SQLite
    broker_url: str = ""  # empty: in-process memory broker

    def env(self, port: int, var_dir: Path, *, qr_lifetime: float) -> dict[str, str]:
        """The environment the server child runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("QRLOGIN_")}
        env.update(
            {
                "QRLOGIN_PORT": str(port),
                "QRLOGIN_HOST": "127.0.0.1",
                "QRLOGIN_VAR_DIR": str(var_dir),
                "QRLOGIN_DATABASE_URL": self.database_url,
                "QRLOGIN_BROKER_URL": self.broker_url,
                "QRLOGIN_QR_LIFETIME": str(qr_lifetime),
                "QRLOGIN_LIMIT_QR_CREATE": BENCH_LIMIT,
                "QRLOGIN_LIMIT_APP_LOGIN": BENCH_LIMIT,
                "QRLOGIN_LIMIT_SCAN": BENCH_LIMIT,
                "QRLOGIN_LIMIT_REDEEM": BENCH_LIMIT,
                "QRLOGIN_LIMIT_LONGPOLL": BENCH_LIMIT,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def command(self, port: int, *, qr_lifetime: float) -> list[str]:
        """The command line of the server child."""
        if self.kind == "baseline":
            return [
                sys.executable,
                "-m",
                "loadtests.baseline",
                "--port",
                str(port),
                "--lifetime",
                str(qr_lifetime),
            ]
        script = Path(sys.executable).with_name("qrlogin")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "server"]
        return [*command, "serve", "--workers", str(self.workers)]


@dataclass(slots=True)
class RunningServer:
    """A started server child and how to look at it."""

    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]
    _root: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self._root = psutil.Process(self.process.pid)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    def tree(self) -> list[psutil.Process]:
        """The server process and all its descendants that are still alive."""
        with contextlib.suppress(psutil.Error):
            return [self._root, *self._root.children(recursive=True)]
        return []

    def workers(self) -> list[psutil.Process]:
        """The processes that serve requests (the children, with --workers > 1)."""
        if self.spec.workers == 1:
            return [self._root]
        serving = []
        with contextlib.suppress(psutil.Error):
            for child in self._root.children():
                # Skip multiprocessing's resource tracker; keep the spawned workers.
                with contextlib.suppress(psutil.Error):
                    if any("spawn_main" in part for part in child.cmdline()):
                        serving.append(child)
        return serving

    def rss(self) -> int:
        """Resident memory of the whole tree, in bytes."""
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the whole tree so far."""
        total = 0.0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def listening_workers(self) -> int:
        """How many serving processes have a listening socket on the port."""
        count = 0
        for proc in self.workers():
            with contextlib.suppress(psutil.Error):
                for conn in proc.net_connections(kind="tcp"):
                    if (
                        conn.status == psutil.CONN_LISTEN
                        and conn.laddr.port == self.port
                    ):
                        count += 1
                        break
        return count

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every worker listens and /healthz answers."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.spec.label} exited with {self.process.returncode}; "
                        f"see {self.log_path}"
                    )
                if self.listening_workers() >= self.spec.workers:
                    with contextlib.suppress(aiohttp.ClientError, OSError):
                        async with http.get(self.base_url + "/healthz") as response:
                            if response.status == 200:
                                return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.spec.label} was not ready in {timeout:g}s")

    async def readyz(self) -> dict[str, object]:
        """GET /readyz (one worker's view when there are several)."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.base_url + "/readyz") as response,
        ):
            return dict(await response.json())

    def stop(self, timeout: float = 20.0) -> None:
        """SIGINT (graceful), then SIGKILL to the tree if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                for proc in reversed(self.tree()):
                    with contextlib.suppress(psutil.Error):
                        proc.kill()
                self.process.wait(5)


def start_server(
    spec: ServerSpec,
    workdir: Path,
    *,
    qr_lifetime: float,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> RunningServer:
    """Start spec's server in workdir on a free port; logs go to a file there."""
    port = port or free_port()
    var_dir = workdir / f"var-{spec.key}"
    log_path = workdir / f"{spec.key}-{port}.log"
    env = spec.env(port, var_dir, qr_lifetime=qr_lifetime) | (extra_env or {})
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            spec.command(port, qr_lifetime=qr_lifetime),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return RunningServer(spec, port, process, log_path, env)


def create_accounts(
    spec: ServerSpec, workdir: Path, usernames: list[str], password: str
) -> None:
    """Create the phone accounts in spec's database (the baseline needs none)."""
    if spec.kind == "baseline":
        return
    env = spec.env(0, workdir / f"var-{spec.key}", qr_lifetime=120.0)
    count = len(usernames)
    prefix = usernames[0].rstrip("0123456789")
    with open(workdir / f"{spec.key}-accounts.log", "ab") as log:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "loadtests.make_users",
                "--prefix",
                prefix,
                "--count",
                str(count),
                "--password",
                password,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )


async def reset_postgres(database: str) -> None:
    """Drop and create the benchmark's own PostgreSQL database (never `test`)."""
    import asyncpg

    if database in ("test", "postgres", "template0", "template1", "qrlogin_test"):
        raise ValueError(f"refusing to reset the shared database {database!r}")
    admin = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()


async def reset_redis(url: str) -> None:
    """FLUSHDB on the benchmark's own Redis database (never 15, the tests' one)."""
    import redis.asyncio as redis

    if url.rstrip("/").endswith("/15"):
        raise ValueError("Redis database 15 belongs to the test suite")
    client = redis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
