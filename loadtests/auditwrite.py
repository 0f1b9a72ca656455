"""What writing the audit trail costs per row on the embedded database.

A flow records four audit events; the writer puts them into SQLite in batches.
This prints, per row, the CPU time of the whole process and of the event loop's
thread alone (what a request waiting behind the write feels), for SQLAlchemy's
insert and for the writer's own records, one batch or four to a transaction
(finding 18 in docs/benchmarks.md).

Run: ``python -m loadtests.auditwrite`` (a few seconds, a temporary SQLite file).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from loadtests.report import markdown_table
from server.audit import BATCH, _insert
from server.database import _tune_sqlite
from server.tables import audit_events, metadata


def events(count: int) -> list[dict[str, Any]]:
    """Rows shaped like a confirm's audit event."""
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "at": now,
            "event": "qr_confirmed",
            "subject": f"{number:043d}",
            "user_id": 1,
            "ip": "127.0.0.1",
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
            "data": {"page_ip": "127.0.0.1"},
        }
        for number in range(count)
    ]


async def through_sqlalchemy(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """The insert the writer used before."""
    await conn.execute(audit_events.insert(), rows)


async def measure(database: Path, transactions: int) -> list[tuple[str, float, float]]:
    """(way, µs of process CPU a row, µs of the loop thread's CPU a row)."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    event.listen(engine.sync_engine, "connect", _tune_sqlite)
    ways = [
        ("SQLAlchemy insert, one batch a transaction", through_sqlalchemy, 1),
        ("the writer's records, one batch a transaction", _insert, 1),
        ("the writer's records, four batches a transaction", _insert, 4),
    ]
    rows = []
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        for _ in range(50):  # a table that is not empty
            async with engine.begin() as conn:
                await _insert(conn, events(BATCH))
        for way, insert, per_transaction in ways:
            written = 0
            process, loop = time.process_time(), time.thread_time()
            for _ in range(max(1, transactions // per_transaction)):
                async with engine.begin() as conn:
                    for _ in range(per_transaction):
                        await insert(conn, events(BATCH))
                        written += BATCH
            rows.append(
                (
                    way,
                    (time.process_time() - process) / written * 1e6,
                    (time.thread_time() - loop) / written * 1e6,
                )
            )
    finally:
        await engine.dispose()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: measure and print a Markdown table."""
    cli = argparse.ArgumentParser(
        prog="python -m loadtests.auditwrite", description=__doc__.splitlines()[0]
    )
    cli.add_argument(
        "--batches", type=int, default=80, help="batches of 64 rows for each way"
    )
    args = cli.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qrlogin-auditwrite-") as folder:
        rows = asyncio.run(measure(Path(folder) / "audit.db", args.batches))
    head = ("way", "process CPU a row", "event loop's CPU a row")
    print(markdown_table(head, [(w, f"{p:.1f} µs", f"{t:.1f} µs") for w, p, t in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
