"""Audit events: one function records them, a background writer batches them.

Recording never waits for the database, so the login path stays fast; the writer
flushes every FLUSH_INTERVAL seconds or BATCH rows, and once more at shutdown.
What is queued when the process dies is lost: at most FLUSH_INTERVAL's worth.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server import jsontext
from server.tables import audit_events

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.25  # a write holds the loop ~1 ms; fewer, larger ones
BATCH = 64  # rows per statement: the loop serves requests between them
STATEMENTS = 4  # statements per transaction at most on SQLite, when many wait
BACKLOG = STATEMENTS * BATCH  # rows waiting beyond which statements grow
BACKLOG_BATCH = 256  # rows per statement while a backlog is written


class Audit:
    """The one place audit events go through."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closing = False

    def record(
        self,
        event: str,
        *,
        subject: str = "",
        user_id: int | None = None,
        ip: str = "",
        user_agent: str = "",
        **data: Any,
    ) -> None:
        """Queue one event; it reaches the database within a moment."""
        self._pending.append(
            {
                "at": dt.datetime.now(dt.UTC),
                "event": event,
                "subject": subject,
                "user_id": user_id,
                "ip": ip,
                "user_agent": user_agent[:512],
                "data": data,
            }
        )
        log.debug("audit %s subject=%s user=%s ip=%s", event, subject[:8], user_id, ip)
        if len(self._pending) >= BATCH:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything queued so far.

        Statements are of BATCH rows, so the loop serves requests between them; on
        SQLite up to STATEMENTS of them share a transaction, and a busy writer
        commits less often (a row costs about a third less four batches at a
        time). When more than BACKLOG rows wait, statements grow to BACKLOG_BATCH.
        """
        # asyncpg's COPY commits on its own, outside the transaction SQLAlchemy
        # begins at its first statement: there a transaction is one statement.
        statements = 1 if self._engine.dialect.name == "postgresql" else STATEMENTS
        async with self._lock:
            while self._pending:
                # On a saturated node every await on the database waits for a turn
                # of a busy loop (about 15 ms measured), whatever the statement's
                # size: with 64 rows an await the writer fell behind the logins and
                # the queue grew without end (finding 21 in docs/benchmarks.md).
                size = BATCH if len(self._pending) <= BACKLOG else BACKLOG_BATCH
                group = size * statements
                rows, self._pending = self._pending[:group], self._pending[group:]
                try:
                    async with self._engine.begin() as conn:
                        for start in range(0, len(rows), size):
                            await _insert(conn, rows[start : start + size])
                except (
                    SQLAlchemyError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                    OSError,
                ):
                    # Keep the rows for the next flush rather than lose them.
                    self._pending[:0] = rows
                    log.exception("audit write failed; %d rows kept", len(rows))
                    return

    async def _write_forever(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL)
            self._wake.clear()
            if self._pending:
                await self.flush()

    async def run(self) -> AsyncIterator[None]:
        """Cleanup-context body: write in the background, flush at the end."""
        self._writer = asyncio.create_task(self._write_forever())
        try:
            yield
        finally:
            # Stop the writer between writes, never inside one: a write cancelled
            # halfway would lose its rows, and on SQLite its connection could keep
            # the open transaction's lock, on which the last flush would then wait.
            self._closing = True
            self._wake.set()
            try:
                await self._writer
            except Exception:
                log.exception("audit writer failed")
            await self.flush()


# The order of each record.
COLUMNS = ("at", "event", "subject", "user_id", "ip", "user_agent", "data")
# SQLAlchemy's text form of a DateTime on SQLite, the one its reads parse.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
SQLITE_INSERT = (
    f"INSERT INTO {audit_events.name} ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(COLUMNS))})"
)


async def _insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """One batch of events into the table, as records built once.

    Through SQLAlchemy's insert, a batch of 64 events cost the event loop 1.5 to
    3 ms: it processes each of the 448 parameters on its own, and a confirm that
    arrives meanwhile waits. PostgreSQL takes the records by COPY through asyncpg
    (about 0.5 ms, in shorter slices, and atomic as the INSERT was); SQLite by the
    driver's executemany, with the timestamp in the text form SQLAlchemy writes and
    reads there (loop time a row 27 → 15 µs).
    """
    records = [
        (
            row["at"],
            row["event"],
            row["subject"],
            row["user_id"],
            row["ip"],
            row["user_agent"],
            jsontext.dumps(row["data"]),
        )
        for row in rows
    ]
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(
            audit_events.name, columns=COLUMNS, records=records
        )
        return
    await conn.exec_driver_sql(
        SQLITE_INSERT,
        [(at.strftime(SQLITE_DATETIME), *rest) for at, *rest in records],
    )
