"""The in-process broker: the embedded default, correct for one process only."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from limits.aio.storage import MemoryStorage, Storage

from server import jsontext, memtrim
from server.broker import Broker

SWEEP_INTERVAL = 30.0
TRIM_AFTER = 5000  # keys one sweep must drop before the C heap is trimmed


class MemoryBroker(Broker):
    """Keys and sets in dicts with expiry times; pub/sub is a direct call.

    Every method finishes without awaiting anything, so each one is atomic with
    respect to the other coroutines of the process: that is its compare-and-set.

    String values are kept as UTF-8 bytes. A QR document with one Chinese
    character in it would otherwise be a str of two bytes a character, and grow
    by a cached UTF-8 copy the first time orjson reads it: 1,010 bytes instead
    of 344, for every live session and finished one in its grace.
    """

    def __init__(self, *, clock: Callable[[], float]) -> None:
        super().__init__()
        self._clock = clock
        self._data: dict[str, tuple[Any, float]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._limits = LimitsStorage()

    async def start(self) -> None:
        """Start the sweeper that drops expired keys nobody reads again."""
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        """Stop the sweeper."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def ping(self) -> None:
        """The memory broker is always there."""

    def _live(self, key: str) -> Any | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._data[key]
            return None
        return entry[0]

    def sweep(self) -> int:
        """Drop every expired key and set member now; returns how many keys went.

        The rate limiter's expired counters go too.
        """
        self._limits.sweep(time.time())
        now = self._clock()
        dead = []
        thinned = []
        for key, (value, expires) in self._data.items():
            if expires <= now:
                dead.append(key)
            elif isinstance(value, dict) and _prune(value, now):
                thinned.append(key)
        for key in dead:
            del self._data[key]
        # A dict keeps the table it grew to when its keys go; after a burst has
        # passed, a copy sized for what is left lets that table go as well.
        for key in thinned:
            members, expires = self._data[key]
            self._data[key] = (dict(members), expires)
        if len(dead) > len(self._data):
            self._data = dict(self._data)
        return len(dead)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            if self.sweep() >= TRIM_AFTER:
                # The keys of a busy half-minute are gone: give their pages back.
                # A small sweep frees too little to be worth the walk of the heap.
                await asyncio.to_thread(memtrim.release_free_memory)

    async def get(self, key: str) -> str | None:
        """The value at key."""
        return _text(self._live(key))

    async def put(
        self, key: str, value: str, ttl: float, *, only_new: bool = False
    ) -> bool:
        """Store value with a TTL."""
        if only_new and self._live(key) is not None:
            return False
        self._data[key] = (value.encode(), self._clock() + ttl)
        return True

    async def take(self, key: str) -> str | None:
        """Get and delete."""
        value = self._live(key)
        self._data.pop(key, None)
        return _text(value)

    async def delete(self, *keys: str) -> None:
        """Remove keys."""
        for key in keys:
            self._data.pop(key, None)

    async def incr(self, key: str, ttl: float) -> int:
        """A counter that starts at one and expires ttl after its first count."""
        current = self._live(key)
        if isinstance(current, int):
            self._data[key] = (current + 1, self._data[key][1])
            return current + 1
        self._data[key] = (1, self._clock() + ttl)
        return 1

    def _member_map(self, key: str) -> dict[str, float]:
        """The live members of the set at key (member → expiry), pruned."""
        current = self._live(key)
        if not isinstance(current, dict):
            return {}
        _prune(current, self._clock())
        return current

    async def add_member(
        self, key: str, member: str, ttl: float, *, put: tuple[str, str] | None = None
    ) -> None:
        """Add to a set; the member expires after ttl, the set with its last member."""
        if put is not None:
            await self.put(*put, ttl)
        # Expired members are left to the sweep and to members(): pruning here
        # would cost a pass over the set on every login.
        expires = self._clock() + ttl
        members = self._live(key)
        if isinstance(members, dict):
            members[member] = expires
            expires = max(expires, self._data[key][1])
        else:
            members = {member: expires}
        self._data[key] = (members, expires)

    async def remove_member(self, key: str, member: str) -> None:
        """Remove from a set."""
        self._member_map(key).pop(member, None)

    async def members(self, key: str) -> set[str]:
        """The live members."""
        return set(self._member_map(key))

    async def transition(
        self,
        key: str,
        *,
        allowed: tuple[str, ...],
        changes: dict[str, Any],
        channel: str,
        ttl: float | None = None,
        match: dict[str, Any] | None = None,
        alive_at: float | None = None,
    ) -> tuple[bool, dict[str, Any] | None]:
        """Compare-and-set without an await in between, then publish."""
        raw = self._live(key)
        if not isinstance(raw, bytes):
            return False, None
        doc = jsontext.loads(raw)
        if doc.get("state") not in allowed:
            return False, doc
        if match and any(doc.get(field) != value for field, value in match.items()):
            return False, doc
        if alive_at is not None and not doc["expires_at"] > alive_at:
            return False, doc
        doc.update(changes)
        doc["version"] = int(doc.get("version", 0)) + 1
        data = jsontext.dumps(doc)
        expires = self._clock() + ttl if ttl is not None else self._data[key][1]
        # Encoded from the str: orjson's own bytes keep its 4 KiB buffer.
        self._data[key] = (data.encode(), expires)
        self.on_message(channel, data)
        return True, doc

    async def publish(self, channel: str, data: str) -> None:
        """Deliver to this process's listeners at once."""
        self.on_message(channel, data)

    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        """Deliver each, in order."""
        for channel, data in messages:
            self.on_message(channel, data)

    async def subscribe(self, channel: str) -> None:
        """Nothing to do: every publish reaches this process."""

    async def unsubscribe(self, channel: str) -> None:
        """Nothing to do."""

    def limits_storage(self) -> Storage:
        """The limits library's own in-memory storage."""
        return self._limits

    def __len__(self) -> int:
        return len(self._data)


class LimitsStorage(MemoryStorage):
    """The limits library's memory storage, swept with the broker's keys.

    The library schedules a sweep of its own after every counted hit, in a task
    that walks every key it holds: with 10,000 live counters (a few thousand
    phones and addresses within the last windows) each hit cost 0.86 ms of CPU,
    with 50,000 5.8 ms. Counts do not depend on it: ``get`` drops an expired
    counter when it reads one. So the per-hit sweep is switched off, and the
    broker's sweeper drops what nobody reads again, every SWEEP_INTERVAL.
    """

    async def _MemoryStorage__schedule_expiry(self) -> None:
        """Overrides the library's private per-hit scheduling: do nothing."""

    def sweep(self, now: float) -> None:
        """Drop the counters and moving-window entries that have expired by now."""
        for key in [key for key, at in self.expirations.items() if at <= now]:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
            self.locks.pop(key, None)
        # A moving window keeps its entries newest first: keep those still alive.
        for key, entries in list(self.events.items()):
            alive = bisect.bisect_left(entries, -now, key=lambda entry: -entry.expiry)
            if alive:
                self.events[key] = entries[:alive]
            else:
                self.events.pop(key, None)
                self.locks.pop(key, None)


def _text(value: Any) -> str | None:
    """A stored string as the str the interface speaks; None for anything else."""
    return value.decode() if isinstance(value, bytes) else None


def _prune(members: dict[str, float], now: float) -> bool:
    """Drop the members of a set whose time has come; True when over half went."""
    ended = [m for m, expires in members.items() if expires <= now]
    for member in ended:
        del members[member]
    return len(ended) > len(members)
