"""Fixtures: both backend pairs, a running app per test, and an event-loop watchdog."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.settings import Settings, load_settings

PG_ADMIN_URL = os.environ.get(
    "QRLOGIN_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test"
)
PG_TEST_DB = os.environ.get("QRLOGIN_TEST_PG_DB", "qrlogin_test")
PG_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_TEST_DB
REDIS_URL = os.environ.get("QRLOGIN_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"

BACKENDS = ("memory", "redis")


def missing_service(what: str, err: BaseException) -> None:
    """Fail under CI (a missing service is a broken run), skip on a laptop."""
    message = f"{what} is not reachable: {err}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


_pg_ready = False


async def prepare_postgres() -> None:
    """Create the test database once and bring its schema up to date."""
    global _pg_ready
    if _pg_ready:
        return
    try:
        admin = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as err:
        missing_service("PostgreSQL", err)
    try:
        exists = await admin.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", PG_TEST_DB
        )
        if not exists:
            await admin.execute(f'CREATE DATABASE "{PG_TEST_DB}"')
    finally:
        await admin.close()
    from server.database import create_engine, upgrade

    engine = create_engine(load_settings(database_url=PG_URL))
    await upgrade(engine)
    await engine.dispose()
    _pg_ready = True


async def clean_postgres() -> None:
    """Empty every table (the schema stays)."""
    conn = await asyncpg.connect(PG_URL, timeout=5)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


async def clean_redis() -> None:
    """Empty the test database of Redis."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.flushdb()
    except (OSError, redis.RedisError) as err:
        missing_service("Redis", err)
    finally:
        await client.aclose()


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that asks runs on SQLite + memory and on PostgreSQL + Redis."""
    return str(request.param)


@pytest.fixture
async def backend_settings(backend: str, tmp_path: Path) -> dict[str, Any]:
    """Settings that select the backend pair, with clean storage."""
    if backend == "redis":
        await prepare_postgres()
        await clean_postgres()
        await clean_redis()
        return {"database_url": PG_URL, "broker_url": REDIS_URL}
    return {"database_url": f"sqlite:///{tmp_path / 'test.db'}", "broker_url": ""}


@pytest.fixture
def make_settings(backend_settings: dict[str, Any]) -> Callable[..., Settings]:
    """Build settings for this backend; keyword overrides win."""

    def make(**overrides: Any) -> Settings:
        port = overrides.pop("port", None) or free_port()
        values = {
            **backend_settings,
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            **overrides,
        }
        return load_settings(**values)

    return make


@pytest.fixture
def clock() -> FakeClock | None:
    """Tests that move time override this with a FakeClock."""
    return None


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Tests override this to change settings of the app under test."""
    return {}


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings],
    settings_overrides: dict[str, Any],
    clock: FakeClock | None,
) -> AsyncIterator[TestClient]:
    """A running app on a real port, and an HTTP client for it."""
    settings = make_settings(**settings_overrides)
    kwargs = {"clock": clock} if clock is not None else {}
    app = create_app(settings, migrate=True, **kwargs)
    server = TestServer(app, host="127.0.0.1", port=settings.port)
    async with TestClient(server) as test_client:
        yield test_client


class LoopWatchdog(logging.Handler):
    """Collects asyncio's 'Executing ... took N seconds' debug warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.slow: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing") and "took" in message:
            self.slow.append(message)


@pytest.fixture(autouse=True)
async def no_blocking() -> AsyncIterator[None]:
    """Fail a test in which one callback held the event loop for over two seconds.

    Two, not less: on a loaded two-core machine the test process itself can be
    descheduled for a second, which is not the code blocking the loop.
    """
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 2.0
    loop.set_debug(True)
    watchdog = LoopWatchdog()
    logger = logging.getLogger("asyncio")
    logger.addHandler(watchdog)
    try:
        yield
    finally:
        logger.removeHandler(watchdog)
        loop.set_debug(False)
    assert not watchdog.slow, f"the event loop was blocked: {watchdog.slow}"
