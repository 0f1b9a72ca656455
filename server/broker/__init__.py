"""The broker: ephemeral keys with TTLs, atomic state transitions and pub/sub.

Two implementations share this interface: an in-process memory broker (one process,
the embedded default) and Redis. Values are strings; documents are JSON objects.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from limits.aio.storage import Storage

MessageHandler = Callable[[str, str], None]
ResyncHandler = Callable[[], None]


class Broker(abc.ABC):
    """Ephemeral storage and messaging shared by every node."""

    def __init__(self) -> None:
        self.on_message: MessageHandler = lambda channel, data: None
        self.on_resync: ResyncHandler = lambda: None
        # Held around every command; a broker with a connection pool bounds how
        # many commands are in flight with it (the rate limiter holds it too).
        self.gate: contextlib.AbstractAsyncContextManager[Any] = (
            contextlib.nullcontext()
        )

    @abc.abstractmethod
    async def start(self) -> None:
        """Open connections and background tasks."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close connections and stop background tasks."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise Unavailable unless the broker answers now."""

    @abc.abstractmethod
    async def get(self, key: str) -> str | None:
        """The value at key, or None when missing or expired."""

    @abc.abstractmethod
    async def put(
        self, key: str, value: str, ttl: float, *, only_new: bool = False
    ) -> bool:
        """Store value for ttl seconds; with only_new, fail (False) if key exists."""

    @abc.abstractmethod
    async def take(self, key: str) -> str | None:
        """Get and delete in one step: of two callers, only one gets the value."""

    @abc.abstractmethod
    async def delete(self, *keys: str) -> None:
        """Remove keys; missing ones are ignored."""

    @abc.abstractmethod
    async def incr(self, key: str, ttl: float) -> int:
        """Add one to the counter at key (created with ttl) and return it."""

    @abc.abstractmethod
    async def add_member(
        self, key: str, member: str, ttl: float, *, put: tuple[str, str] | None = None
    ) -> None:
        """Add member to the set at key for ttl seconds.

        Each member expires on its own (and the set with its last member), so a set
        of a user's sessions never keeps the hashes of sessions long gone. With
        put=(key, value), also store value at that key for ttl, in the same step:
        a session and its entry in the user's set are made together.
        """

    @abc.abstractmethod
    async def remove_member(self, key: str, member: str) -> None:
        """Remove member from the set at key."""

    @abc.abstractmethod
    async def members(self, key: str) -> set[str]:
        """The members of the set at key."""

    @abc.abstractmethod
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
        """Compare-and-set on a JSON document's "state", then publish it.

        If the document exists, its state is one of allowed, each field in match
        has the given value and (with alive_at) its "expires_at" is still after
        alive_at, merge changes, add one to "version", optionally reset the TTL,
        publish the new document on channel and return (True, new). Otherwise
        change nothing and return (False, current), current being None when the
        key is missing. This node's listeners may hear a new document twice (at
        once, and when the publish comes back); its version tells them apart.
        """

    @abc.abstractmethod
    async def publish(self, channel: str, data: str) -> None:
        """Send data to every node subscribed to channel."""

    @abc.abstractmethod
    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        """Publish each (channel, data) in order, together: one round trip."""

    @abc.abstractmethod
    async def subscribe(self, channel: str) -> None:
        """Start receiving channel; returns once messages are sure to arrive."""

    @abc.abstractmethod
    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving channel."""

    @abc.abstractmethod
    def limits_storage(self) -> Storage:
        """A storage for the limits library on the same backend."""


def create_broker(url: str, *, clock: Callable[[], float]) -> Broker:
    """The Redis broker for redis:// URLs, the memory broker for an empty one."""
    if not url:
        from server.broker.memory import MemoryBroker

        return MemoryBroker(clock=clock)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from server.broker.redis import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unsupported broker URL scheme: {url.split(':', 1)[0]}")
