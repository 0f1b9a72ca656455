"""The notification center: durable first, pushed second.

A notification is written to the database, then published on the user's channel.
A client that reconnects says the last id it saw and gets everything after it from
the database, then the live stream, with ids deduplicated: nothing is lost and
nothing arrives twice.
"""

from __future__ import annotations

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


class Notifications:
    """Write, list, mark and push notifications."""

    def __init__(self, *, engine: AsyncEngine, broker: Broker) -> None:
        self._engine = engine
        self._broker = broker

    async def notify(
        self, user_id: int, kind: str, title: str, body: str = "", link: str = ""
    ) -> dict[str, Any]:
        """Store a notification, then push it to every open page and app of the user.

        A failed push loses nothing: the row is there for the next (re)connect.
        """
        async with self._engine.begin() as conn:
            row = await store.insert(
                conn,
                user_id=user_id,
                kind=kind,
                title=title[:128],
                body=body[:1000],
                link=link[:256],
            )
        note = as_json(row)
        try:
            event = {"event": "new", "notification": note}
            await self._broker.publish(store.channel(user_id), json.dumps(event))
        except Unavailable:
            log.error("notification %s stored but not pushed", note["id"])
        return note

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
