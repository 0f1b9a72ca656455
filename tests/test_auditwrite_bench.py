"""The audit-write measurement behind finding 18 of docs/benchmarks.md runs."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from loadtests.auditwrite import measure


async def test_auditwrite_measures_every_way(tmp_path: Path) -> None:
    rows = await measure(tmp_path / "audit.db", transactions=4)
    assert len(rows) == 3
    assert all(process > 0 and loop > 0 for _, process, loop in rows)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    with engine.connect() as conn:
        written = conn.execute(sa.text("SELECT count(*) FROM audit_events")).scalar()
    engine.dispose()
    assert written == 64 * (50 + 4 + 4 + 4)
