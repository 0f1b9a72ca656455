"""One socket's outgoing side: a bounded queue drained by a short-lived task.

No task sits idle per socket: a drain task exists only while frames are waiting,
which keeps a waiting page cheap. A client that lets its queue fill is closed with
CLOSE_SLOW so that it cannot hold frames for everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from aiohttp import web

from server import jsontext
from server.background import spawn
from server.ws.protocol import CLOSE_REASONS, CLOSE_SLOW

log = logging.getLogger(__name__)


class Connection:
    """Send frames in order, drop the socket when it cannot keep up."""

    __slots__ = ("_close_after", "_closing", "_drain", "_limit", "_queue", "peer", "ws")

    def __init__(self, ws: web.WebSocketResponse, *, limit: int, peer: str) -> None:
        self.ws = ws
        self.peer = peer
        # Made on the first frame and dropped when drained: an idle page holds none
        # (an empty deque is about 760 bytes).
        self._queue: deque[str] | None = None
        self._limit = limit
        self._drain: asyncio.Task[None] | None = None
        self._close_after: int | None = None
        self._closing = False

    def send(self, frame: dict[str, Any], *, then_close: int | None = None) -> None:
        """Queue one frame; with then_close, close with that code once it is out."""
        if self._closing or self.ws.closed:
            return
        if self._queue is None:
            self._queue = deque()
        if len(self._queue) >= self._limit:
            log.error("dropping slow WebSocket client %s", self.peer)
            self.close(CLOSE_SLOW)
            return
        self._queue.append(jsontext.dumps(frame))
        if then_close is not None:
            self._close_after = then_close
        if self._drain is None:
            self._drain = spawn(self._drain_queue(), name="ws-drain")

    async def _drain_queue(self) -> None:
        try:
            while self._queue and not self.ws.closed:
                await self.ws.send_str(self._queue.popleft())
            if self._close_after is not None:
                await self._close(self._close_after)
        except (ConnectionError, RuntimeError) as err:
            log.debug("send to %s failed: %s", self.peer, err)
        finally:
            self._drain = None
            if not self._queue:
                self._queue = None

    def close(self, code: int) -> None:
        """Close soon, without waiting for queued frames."""
        if self._closing:
            return
        self._closing = True
        self._queue = None
        spawn(self._close(code), name="ws-close")

    async def _close(self, code: int) -> None:
        self._closing = True
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
            await self.ws.close(code=code, message=CLOSE_REASONS.get(code, "").encode())

    async def wait_sent(self) -> None:
        """Wait until the queue is empty (tests and shutdown)."""
        while self._drain is not None:
            await asyncio.sleep(0)
