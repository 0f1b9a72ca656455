"""Recently read users, kept per process so the phone's calls skip the database.

Every phone step (scan, confirm, cancel) and every redeem needs the caller's user;
reading the users table for each was two thirds of a confirm request. Users change
rarely, and every change goes through a service that calls `changed`, which drops
the entry here and tells the other nodes over the broker to drop theirs.

Three guards keep an entry from outliving the row it copies:
- a read that raced with a change is not kept (the generation count moved on);
- a lost broker message (the subscription was rebuilt) empties the whole cache;
- every entry expires after `ttl` seconds anyway, and the cache holds at most
  `size` users, least recently used out first.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.auth.service import User
    from server.broker import Broker
    from server.broker.hub import Hub
    from server.keys import Clock

log = logging.getLogger(__name__)

CHANNEL = "users:changed"


class UserCache:
    """User by id, bounded in age and size, emptied by changes on any node."""

    def __init__(
        self, broker: Broker, hub: Hub, clock: Clock, *, ttl: float, size: int
    ) -> None:
        self._broker = broker
        self._hub = hub
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[int, tuple[float, User]] = OrderedDict()
        self.generation = 0  # moves on with every change heard of

    async def start(self) -> None:
        """Listen for changes made on other nodes."""
        if self._size > 0:
            await self._hub.add(CHANNEL, self._heard)

    async def close(self) -> None:
        """Stop listening."""
        if self._size > 0:
            await self._hub.remove(CHANNEL, self._heard)

    def get(self, user_id: int) -> User | None:
        """The cached user, or None when not cached or too old."""
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        until, user = entry
        if self._clock() >= until:
            del self._entries[user_id]
            return None
        self._entries.move_to_end(user_id)
        return user

    def keep(self, user: User, generation: int) -> None:
        """Cache user, read while the generation was `generation`.

        A change heard of since then may have landed after that read: the copy
        could be the old row, so it is not kept.
        """
        if generation != self.generation or self._size <= 0:
            return
        self._entries[user.id] = (self._clock() + self._ttl, user)
        self._entries.move_to_end(user.id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    async def changed(self, user_id: int) -> None:
        """A user's row was written: drop it here and on every other node."""
        self._drop(user_id)
        await self._broker.publish(CHANNEL, str(user_id))

    def _drop(self, user_id: int) -> None:
        self.generation += 1
        self._entries.pop(user_id, None)

    def _heard(self, data: str | None) -> None:
        if data is None:  # messages may have been lost: trust nothing kept
            self.generation += 1
            self._entries.clear()
            return
        try:
            self._drop(int(data))
        except ValueError:
            log.warning("ignored a malformed user change message: %r", data[:40])

    def __len__(self) -> int:
        return len(self._entries)
