"""Local fan-out: one broker subscription per channel per process, many listeners.

A channel is subscribed when its first local listener arrives and unsubscribed after
the last one leaves. Listeners are plain callables that must not block; they get
the published string, or None when the subscription was rebuilt and anything may
have been missed (the listener then re-reads the current state).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from server.broker import Broker

log = logging.getLogger(__name__)

Listener = Callable[[str | None], None]


class Hub:
    """Channel name to local listeners, wired to a broker's messages."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._listeners: dict[str, set[Listener]] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._done: asyncio.Future[None] | None = None
        broker.on_message = self.dispatch
        broker.on_resync = self.resync

    async def add(self, channel: str, listener: Listener) -> None:
        """Register listener; returns once the channel's messages reach this node."""
        self._listeners.setdefault(channel, set()).add(listener)
        ready = self._ready.get(channel)
        if ready is None:
            ready = asyncio.ensure_future(self._broker.subscribe(channel))
            self._ready[channel] = ready
        try:
            await asyncio.shield(ready)
        except BaseException:
            self._drop(channel, listener)
            if self._ready.get(channel) is ready and ready.done():
                self._ready.pop(channel, None)
            raise
        if self._ready.get(channel) is ready:
            # Hold one shared finished future rather than the finished task: a task
            # stays in asyncio's registry of tasks while it is held (0.6 KiB a page).
            self._ready[channel] = self._finished()

    def _finished(self) -> asyncio.Future[None]:
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
            self._done.set_result(None)
        return self._done

    def _drop(self, channel: str, listener: Listener) -> bool:
        """Forget listener; True when it was the channel's last."""
        listeners = self._listeners.get(channel)
        if listeners is None:
            return False
        listeners.discard(listener)
        if listeners:
            return False
        del self._listeners[channel]
        return True

    async def remove(self, channel: str, listener: Listener) -> None:
        """Unregister listener; the last one out unsubscribes the channel."""
        if not self._drop(channel, listener):
            return
        ready = self._ready.pop(channel, None)
        if ready is None:
            return
        try:
            await ready
            await self._broker.unsubscribe(channel)
        except Exception as err:  # the socket is gone either way
            log.warning("unsubscribe from %s failed: %s", channel, err)
        # A listener that arrived meanwhile may have had its SUBSCRIBE overtaken by
        # our UNSUBSCRIBE: subscribe again, then have it re-read what it missed.
        if channel in self._listeners:
            ready = asyncio.ensure_future(self._resubscribe(channel))
            self._ready[channel] = ready

    async def _resubscribe(self, channel: str) -> None:
        await self._broker.subscribe(channel)
        self.dispatch(channel, None)

    def dispatch(self, channel: str, data: str | None) -> None:
        """Hand one message to every local listener of channel."""
        for listener in tuple(self._listeners.get(channel, ())):
            try:
                listener(data)
            except Exception:
                log.exception("listener on %s failed", channel)

    def resync(self) -> None:
        """Tell every listener that messages may have been lost."""
        for channel in tuple(self._listeners):
            self.dispatch(channel, None)

    def __len__(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())

    @property
    def channels(self) -> int:
        """How many channels this node listens to."""
        return len(self._listeners)
