"""The notification center: durable first, pushed second.

A notification is written to the database, then published on the user's channel.
A client that reconnects says the last id it saw and gets everything after it from
the database, then the live stream, with ids deduplicated: nothing is lost and
nothing arrives twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from server.broker import Broker
from server.errors import NotFound, Unavailable
from server.notify import store

log = logging.getLogger(__name__)

PAGE = 50
BATCH = 200  # rows per INSERT when many notifications wait at once
LINGER = 0.25  # seconds notify_soon's rows wait for company before the write


def as_json(row: RowMapping) -> dict[str, Any]:
    """A notification as clients get it."""
    return {
        "id": int(row["id"]),
        "kind": row["kind"],
        "title": row["title"],
        "body": row["body"],
        "link": row["link"],
        "created_at": row["created_at"].timestamp(),
        "read": row["read_at"] is not None,
    }


Pending = tuple[dict[str, Any], "asyncio.Future[dict[str, Any]] | None"]


def _values(
    user_id: int, kind: str, title: str, body: str, link: str
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "kind": kind,
        "title": title[:128],
        "body": body[:1000],
        "link": link[:256],
        "created_at": dt.datetime.now(dt.UTC),
    }


class Notifications:
    """Write, list, mark and push notifications."""

    def __init__(self, *, engine: AsyncEngine, broker: Broker) -> None:
        self._engine = engine
        self._broker = broker
        self._waiting: list[Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._now = asyncio.Event()  # someone waits: stop gathering, write

    async def notify(
        self, user_id: int, kind: str, title: str, body: str = "", link: str = ""
    ) -> dict[str, Any]:
        """Store a notification, then push it to every open page and app of the user.

        Returns once the row is committed and published. Notifications asked for
        while a write is under way share the next one (a group commit), so a burst
        costs one transaction, not one each. A failed push loses nothing: the row
        is there for the next (re)connect.
        """
        stored: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue(_values(user_id, kind, title, body, link), stored)
        self._now.set()
        return await stored

    def notify_soon(
        self, user_id: int, kind: str, title: str, body: str = "", link: str = ""
    ) -> None:
        """Queue a notification nobody needs to wait for (a QR login's notice).

        It is written together with the others queued within LINGER seconds: one
        transaction for a whole burst of logins instead of one each. Like the audit
        trail, what is queued when the process dies is lost.
        """
        self._queue(_values(user_id, kind, title, body, link), None)

    def _queue(
        self, values: dict[str, Any], stored: asyncio.Future[dict[str, Any]] | None
    ) -> None:
        self._waiting.append((values, stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        """Write and publish what is queued, a batch at a time, in order."""
        while self._waiting:
            # Gather company only while there is less than a batch and nobody
            # waits: a full batch lingering too would cap the writes at BATCH per
            # LINGER, and under a steady stream of logins the queue would grow
            # without end (22,000 notices in a minute at 700 logins a second).
            if len(self._waiting) < BATCH and not any(w for _, w in self._waiting):
                self._now.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._now.wait(), LINGER)
            batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
            await self._store(batch)

    async def _store(self, batch: list[Pending]) -> None:
        try:
            async with self._engine.begin() as conn:
                rows = await store.insert_many(conn, [values for values, _ in batch])
        except Exception as err:  # noqa: BLE001 - handed to the callers, not swallowed
            if len(batch) > 1:  # one bad row must not fail the others' writes
                for item in batch:
                    await self._store([item])
                return
            values, stored = batch[0]
            if stored is None:
                log.error("notification for user %s lost: %s", values["user_id"], err)
            elif not stored.done():
                stored.set_exception(err)
            return
        pushes = [(row["user_id"], as_json(row)) for row in rows]
        await self._publish(pushes)
        for (_, stored), (_, note) in zip(batch, pushes, strict=True):
            if stored is not None and not stored.done():  # the caller may be gone
                stored.set_result(note)

    async def _publish(self, pushes: list[tuple[int, dict[str, Any]]]) -> None:
        """Push a batch's notices, each to its user's channel, in one go."""
        messages = [
            (store.channel(user_id), json.dumps({"event": "new", "notification": note}))
            for user_id, note in pushes
        ]
        try:
            await self._broker.publish_many(messages)
        except Unavailable:
            ids = ", ".join(str(note["id"]) for _, note in pushes)
            log.error("notifications %s stored but not pushed", ids)

    async def close(self) -> None:
        """Write everything queued (at shutdown)."""
        self._now.set()
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def after(
        self, user_id: int, after: int, limit: int = PAGE
    ) -> list[dict[str, Any]]:
        """Notifications with ids above after, oldest first."""
        async with self._engine.connect() as conn:
            rows = await store.fetch_after(conn, user_id, after, limit)
        return [as_json(r) for r in rows]

    async def latest(self, user_id: int, limit: int = PAGE) -> list[dict[str, Any]]:
        """The newest notifications, newest first."""
        async with self._engine.connect() as conn:
            rows = await store.fetch_latest(conn, user_id, limit)
        return [as_json(r) for r in rows]

    async def unread(self, user_id: int) -> int:
        """How many are unread."""
        async with self._engine.connect() as conn:
            return await store.count_unread(conn, user_id)

    async def mark_read(self, user_id: int, notification_id: int | None) -> int:
        """Mark one or all read; an unknown id of this user is NotFound."""
        async with self._engine.begin() as conn:
            changed = await store.mark_read(conn, user_id, notification_id)
        if notification_id is not None and changed == 0:
            existing = [
                n
                for n in await self.after(user_id, notification_id - 1, 1)
                if n["id"] == notification_id
            ]
            if not existing:
                raise NotFound("No such notification.", code="unknown_notification")
        target = notification_id if notification_id is not None else "all"
        event = {"event": "read", "notification": target}
        await self._broker.publish(store.channel(user_id), json.dumps(event))
        return changed
