"""The audit trail's writer: what goes in comes out, on either database."""

from __future__ import annotations

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
    await audit.flush()

    full, bare = await stored(client)
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
