"""The audit trail's writer: what goes in comes out, on either database."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

import server.audit
from server.keys import AUDIT, ENGINE
from server.tables import audit_events


async def stored(client: TestClient) -> list[dict[str, Any]]:
    async with client.app[ENGINE].connect() as conn:
        result = await conn.execute(
            sa.select(audit_events)
            .where(audit_events.c.event.like("t_%"))
            .order_by(audit_events.c.id)
        )
        return [dict(row) for row in result.mappings()]


async def test_every_field_comes_back_as_recorded(client: TestClient) -> None:
    audit = client.app[AUDIT]
    audit.record(
        "t_full",
        subject="A" * 24,
        user_id=7,
        ip="10.0.0.1",
        user_agent="压测 App/1.0",
        name="张*",
        nested={"n": 1, "ok": True, "none": None},
    )
    audit.record("t_bare")
    recorded_at = audit._pending[0]["at"]
    await audit.flush()

    full, bare = await stored(client)
    if full["at"].tzinfo is None:  # SQLite keeps the UTC time without its zone
        assert full["at"] == recorded_at.replace(tzinfo=None)
    else:
        assert full["at"] == recorded_at
    assert (full["event"], full["subject"], full["user_id"]) == ("t_full", "A" * 24, 7)
    assert (full["ip"], full["user_agent"]) == ("10.0.0.1", "压测 App/1.0")
    assert full["data"] == {"name": "张*", "nested": {"n": 1, "ok": True, "none": None}}
    assert full["at"].tzinfo is not None or client.app[ENGINE].dialect.name == "sqlite"
    assert (bare["subject"], bare["user_id"], bare["ip"], bare["data"]) == (
        "",
        None,
        "",
        {},
    )


async def test_a_failed_write_keeps_its_rows_for_the_next(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    audit = client.app[AUDIT]
    real = server.audit._insert
    calls = 0

    async def flaky(conn: Any, rows: list[dict[str, Any]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("connection reset")
        await real(conn, rows)

    monkeypatch.setattr(server.audit, "_insert", flaky)
    audit.record("t_kept", subject="one")
    await audit.flush()
    assert await stored(client) == []
    assert "audit write failed; 1 rows kept" in caplog.text

    await audit.flush()
    assert [row["subject"] for row in await stored(client)] == ["one"]


async def test_many_waiting_rows_share_transactions_and_fail_together(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite, rows beyond one batch (short of a backlog) go in statements of
    BATCH within one transaction, and a statement that fails takes its whole
    transaction back; on PostgreSQL each batch is its own COPY. Either way nothing
    is lost or written twice, and the order holds."""
    audit = client.app[AUDIT]
    real = server.audit._insert
    sizes: list[int] = []

    async def second_fails_once(conn: Any, rows: list[dict[str, Any]]) -> None:
        sizes.append(len(rows))
        if len(sizes) == 2:
            raise OSError("connection reset")
        await real(conn, rows)

    monkeypatch.setattr(server.audit, "_insert", second_fails_once)
    count = server.audit.BACKLOG - 10
    for number in range(count):
        audit.record("t_many", subject=f"{number:04d}")
    await audit.flush()
    first = [row["subject"] for row in await stored(client)]
    batch = server.audit.BATCH
    if client.app[ENGINE].dialect.name == "sqlite":
        assert first == []  # the first statement was rolled back with the second
        undone = 2 * batch
    else:  # each COPY is a transaction of its own
        assert first == [f"{number:04d}" for number in range(batch)]
        undone = batch
    await audit.flush()
    subjects = [row["subject"] for row in await stored(client)]
    assert subjects == [f"{number:04d}" for number in range(count)]
    assert max(sizes) == batch  # statements stay one batch long
    assert sum(sizes) == count + undone  # what was undone was written again


async def test_a_backlog_is_written_in_larger_statements(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past BACKLOG waiting rows the statements grow, so a writer that waits a turn
    of a busy loop for each one still keeps up; the order holds."""
    audit = client.app[AUDIT]
    real = server.audit._insert
    sizes: list[int] = []

    async def counted(conn: Any, rows: list[dict[str, Any]]) -> None:
        sizes.append(len(rows))
        await real(conn, rows)

    monkeypatch.setattr(server.audit, "_insert", counted)
    count = server.audit.BACKLOG + 1
    for number in range(count):
        audit.record("t_backlog", subject=f"{number:04d}")
    await audit.flush()
    assert sizes == [server.audit.BACKLOG_BATCH, count - server.audit.BACKLOG_BATCH]
    subjects = [row["subject"] for row in await stored(client)]
    assert subjects == [f"{number:04d}" for number in range(count)]


async def test_shutdown_lets_a_write_under_way_finish(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping the writer while it is inside a transaction neither loses that
    transaction's rows nor leaves it open for the last flush to wait on."""
    audit = server.audit.Audit(client.app[ENGINE])
    real = server.audit._insert
    inside = asyncio.Event()

    async def slow(conn: Any, rows: list[dict[str, Any]]) -> None:
        await real(conn, rows)
        inside.set()
        await asyncio.sleep(0.2)  # the transaction is still open

    monkeypatch.setattr(server.audit, "_insert", slow)
    running = audit.run()
    await anext(running)
    batch = server.audit.BATCH
    for number in range(batch):  # a full batch wakes the writer at once
        audit.record("t_stop", subject=f"{number:04d}")
    await asyncio.wait_for(inside.wait(), 5)
    audit.record("t_stop", subject="late")

    async with asyncio.timeout(10):
        with contextlib.suppress(StopAsyncIteration):
            await anext(running)
    subjects = [row["subject"] for row in await stored(client)]
    assert subjects == [*(f"{number:04d}" for number in range(batch)), "late"]
