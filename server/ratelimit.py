"""Rate limits on either broker, through the limits library's storages."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from server.errors import RateLimited, Unavailable


class RateLimits:
    """Named limits ("qr_create" → "60/minute"), each hit keyed by who is asking.

    A sliding window counter: two counters per key, whatever the limit. A moving
    window keeps one entry per hit, which under a high limit costs memory and time
    on every request.
    """

    def __init__(
        self,
        storage: Storage,
        rules: dict[str, str],
        gate: contextlib.AbstractAsyncContextManager[Any] | None = None,
    ) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._gate = gate or contextlib.nullcontext()  # the broker's, when shared
        self._rules: dict[str, RateLimitItem] = {
            name: parse(rule) for name, rule in rules.items()
        }

    async def hit(self, name: str, who: str) -> None:
        """Count one request; raise RateLimited with Retry-After past the limit."""
        item = self._rules[name]
        try:
            async with self._gate:
                if await self._limiter.hit(item, name, who):
                    return
                stats = await self._limiter.get_window_stats(item, name, who)
        except (ConnectionError, OSError, TimeoutError) as err:
            raise Unavailable("The rate limiter cannot be reached.") from err
        raise RateLimited(math.ceil(stats.reset_time - time.time()))
