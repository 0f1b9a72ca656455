"""The Redis broker: shared by every node, with Lua for compare-and-set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as redis
from limits.aio.storage import RedisStorage, Storage
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server import jsontext
from server.broker import Broker
from server.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

PROBE_INTERVAL = 2.0
PROBE_MISSES = 3
# Seconds a task or a connection gets to stop before it is asked again (a task, up
# to STOP_ASKS times) or left behind.
STOP_PATIENCE = 1.0
STOP_ASKS = 5
COMMANDS_IN_FLIGHT = 64  # per process; a burst beyond waits for a turn

# KEYS[1]: the document's key.
# ARGV[1]: JSON array of the states a transition may start from.
# ARGV[2]: JSON object of fields to merge into the document.
# ARGV[3]: the channel to publish the new document on.
# ARGV[4]: new TTL in milliseconds, or "0" to keep the current one.
# ARGV[5]: JSON object of fields that must have these values.
# ARGV[6]: the document must expire after this time; "" for no check.
# Returns {1, new document} on success, {0, current document or false} otherwise.
TRANSITION = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, false} end
local doc = cjson.decode(raw)
local ok = false
for _, state in ipairs(cjson.decode(ARGV[1])) do
  if doc['state'] == state then ok = true end
end
if not ok then return {0, raw} end
for field, value in pairs(cjson.decode(ARGV[5])) do
  if doc[field] ~= value then return {0, raw} end
end
if ARGV[6] ~= '' and not (tonumber(doc['expires_at']) > tonumber(ARGV[6])) then
  return {0, raw}
end
for field, value in pairs(cjson.decode(ARGV[2])) do doc[field] = value end
doc['version'] = (tonumber(doc['version']) or 0) + 1
local out = cjson.encode(doc)
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('SET', KEYS[1], out, 'PX', ttl)
else
  redis.call('SET', KEYS[1], out, 'KEEPTTL')
end
redis.call('PUBLISH', ARGV[3], out)
return {1, out}
"""

# KEYS[1]: a sorted set scored by expiry. ARGV[1]: member. ARGV[2]: TTL in ms.
# ARGV[3]: now, in ms. Drops expired members, adds this one, and raises the key's
# TTL to at least ARGV[2]. With KEYS[2], also sets it to ARGV[4] for the same TTL.
# Returns nothing.
ADD_MEMBER = """
local expires = tonumber(ARGV[3]) + tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if KEYS[2] then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[2]) end
"""

# KEYS[1]: the counter. ARGV[1]: TTL in milliseconds, set when the counter is new.
# Returns the counter after adding one.
INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


async def stop(task: asyncio.Task[Any] | None) -> None:
    """Cancel task and wait until it has ended.

    A cancellation can be swallowed on its way through redis-py (its connection
    and pool code catches CancelledError in places to clean up), which leaves a
    plain ``await task`` waiting forever; so the task is asked again, a few times,
    and then left behind with an error in the log rather than hang the shutdown.
    """
    if task is None:
        return
    for _ in range(STOP_ASKS):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_PATIENCE)
    if not task.done():
        log.error("background task %s did not stop", task.get_name())
        return
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())


async def close_pubsub(pubsub: PubSub | None) -> None:
    """Close a subscription connection, giving up on it after STOP_PATIENCE."""
    if pubsub is not None:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(STOP_PATIENCE):
                await pubsub.aclose()


class RedisBroker(Broker):
    """One command pool and one subscription connection per process.

    The subscription is watched by a probe: every PROBE_INTERVAL seconds a message
    goes out on this node's control channel. If none comes back for PROBE_MISSES
    intervals, the subscription is dead even if PING works (a proxy or a failover
    can lose it silently), so it is rebuilt and listeners are told to re-read.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        # At most COMMANDS_IN_FLIGHT commands hold a connection at once: a burst
        # beyond waits on the gate (a semaphore, nearly free when not full)
        # instead of failing with "too many connections". redis-py's own
        # BlockingConnectionPool does the same with a condition and a timer per
        # command, which cost more than the command's round trip. The spare
        # connections are for the subscription and its replacement.
        self.gate = asyncio.Semaphore(COMMANDS_IN_FLIGHT)
        pool = redis.ConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=0,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            max_connections=COMMANDS_IN_FLIGHT + 8,
        )
        self._client = redis.Redis(connection_pool=pool)
        # Pub/sub channels are global to a Redis server, not per database: prefix
        # them with the database number so deployments sharing a server (each on
        # its own database) never hear each other.
        self._ns = f"db{self._client.connection_pool.connection_kwargs.get('db', 0)}:"
        self._transition = self._client.register_script(TRANSITION)
        self._add_member = self._client.register_script(ADD_MEMBER)
        self._incr = self._client.register_script(INCR)
        self._control = f"{self._ns}ctl:probe:{os.getpid()}:{secrets.token_hex(4)}"
        self._channels: set[str] = set()
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None
        self._confirmed_on: PubSub | None = None  # whose control channel is confirmed
        self._reader: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self._last_probe = time.monotonic()
        self.resubscriptions = 0

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run one command; connection trouble (after retries) becomes Unavailable."""
        try:
            async with self.gate:
                return await work()
        except (RedisConnectionError, RedisTimeoutError, OSError) as err:
            raise Unavailable("The broker cannot be reached.") from err

    async def start(self) -> None:
        """Open the subscription and start the reader and the probe."""
        await self.ping()
        await self._open_subscription()
        self._prober = asyncio.create_task(self._probe_forever())

    async def close(self) -> None:
        """Stop the tasks and close both connections."""
        for task in (self._prober, self._reader):
            await stop(task)
        await close_pubsub(self._pubsub)
        await self._client.aclose()
        await self._client.connection_pool.disconnect()

    async def ping(self) -> None:
        """PING through the command pool."""
        await self._call(self._client.ping)

    async def _open_subscription(self) -> None:
        self._pubsub = self._client.pubsub()
        channels = [self._control, *(self._ns + c for c in self._channels)]
        await self._pubsub.subscribe(*channels)
        self._last_probe = time.monotonic()
        self._reader = asyncio.create_task(self._read_forever(self._pubsub))

    async def _read_forever(self, pubsub: PubSub) -> None:
        while True:
            try:
                # Block without a timeout: a timeout arms and cancels a timer for
                # every message. The probe's own messages keep the socket busy.
                message = await pubsub.get_message(timeout=None)
            except (RedisError, OSError) as err:
                log.error("subscription connection failed: %s", err)
                await asyncio.sleep(PROBE_INTERVAL)
                continue
            if message is None:
                continue
            kind, channel = message["type"], message["channel"]
            if kind == "message":
                if channel == self._control:
                    self._last_probe = time.monotonic()
                else:
                    self.on_message(channel.removeprefix(self._ns), message["data"])
            elif kind == "subscribe":
                if channel == self._control:
                    self._control_confirmed(pubsub)
                    continue
                waiter = self._waiting.pop(channel.removeprefix(self._ns), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    def _control_confirmed(self, pubsub: PubSub) -> None:
        """The control channel is subscribed once per connection: a second
        confirmation means redis-py reconnected and subscribed again by itself.

        Messages published while the connection was down are lost, so listeners
        are told to re-read, as after a subscription this broker rebuilt.
        """
        if pubsub is not self._confirmed_on:
            self._confirmed_on = pubsub
            return
        log.error(
            "subscription reconnected; %d channels may have missed messages",
            len(self._channels),
        )
        self._last_probe = time.monotonic()
        self.resubscriptions += 1
        self.on_resync()

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            with contextlib.suppress(Unavailable):
                await self._call(lambda: self._client.publish(self._control, "probe"))
            if time.monotonic() - self._last_probe > PROBE_INTERVAL * PROBE_MISSES:
                await self._resubscribe()

    async def _resubscribe(self) -> None:
        """Replace a dead subscription and tell listeners to re-read their state."""
        log.error(
            "subscription is silent; resubscribing %d channels", len(self._channels)
        )
        old_reader, old_pubsub = self._reader, self._pubsub
        await stop(old_reader)
        await close_pubsub(old_pubsub)
        try:
            await self._open_subscription()
        except (RedisError, OSError) as err:
            log.error("resubscribe failed, will retry: %s", err)
            return
        self.resubscriptions += 1
        self.on_resync()

    async def get(self, key: str) -> str | None:
        """GET."""
        return await self._call(lambda: self._client.get(key))

    async def put(
        self, key: str, value: str, ttl: float, *, only_new: bool = False
    ) -> bool:
        """SET with PX, and NX when only_new."""
        ms = max(1, int(ttl * 1000))
        done = await self._call(
            lambda: self._client.set(key, value, px=ms, nx=only_new)
        )
        return bool(done)

    async def take(self, key: str) -> str | None:
        """GETDEL."""
        return await self._call(lambda: self._client.getdel(key))

    async def delete(self, *keys: str) -> None:
        """DEL."""
        if keys:
            await self._call(lambda: self._client.delete(*keys))

    async def incr(self, key: str, ttl: float) -> int:
        """INCR, with a TTL set on the first count."""
        ms = max(1, int(ttl * 1000))
        return int(await self._call(lambda: self._incr(keys=[key], args=[ms])))

    async def add_member(
        self, key: str, member: str, ttl: float, *, put: tuple[str, str] | None = None
    ) -> None:
        """ZADD scored by expiry, dropping expired members on the way (and SET)."""
        ms = max(1, int(ttl * 1000))
        now = int(time.time() * 1000)
        keys, args = [key], [member, ms, now]
        if put is not None:
            keys.append(put[0])
            args.append(put[1])
        await self._call(lambda: self._add_member(keys=keys, args=args))

    async def remove_member(self, key: str, member: str) -> None:
        """ZREM."""
        await self._call(lambda: self._client.zrem(key, member))

    async def members(self, key: str) -> set[str]:
        """The members whose expiry is still ahead."""
        now = int(time.time() * 1000)
        found = await self._call(lambda: self._client.zrangebyscore(key, now, "+inf"))
        return set(found)

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
        """The TRANSITION script: compare, merge, bump, publish in one step."""
        ms = 0 if ttl is None else max(1, int(ttl * 1000))
        args = [
            jsontext.dumps(allowed),
            jsontext.dumps(changes),
            self._ns + channel,
            ms,
            jsontext.dumps(match or {}),
            "" if alive_at is None else repr(alive_at),
        ]
        ok, raw = await self._call(lambda: self._transition(keys=[key], args=args))
        if ok:
            # Listeners on this node hear it now rather than after the round trip
            # through the subscription; the echo that follows carries the same
            # version, which listeners of a transition's channel ignore.
            self.on_message(channel, raw)
        return bool(ok), (jsontext.loads(raw) if raw else None)

    async def publish(self, channel: str, data: str) -> None:
        """PUBLISH."""
        await self._call(lambda: self._client.publish(self._ns + channel, data))

    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        """The PUBLISHes in one pipeline: on a loaded node a round trip costs far
        more than the command in it."""
        if not messages:
            return

        async def send() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                for channel, data in messages:
                    pipe.publish(self._ns + channel, data)
                await pipe.execute()

        await self._call(send)

    async def subscribe(self, channel: str) -> None:
        """SUBSCRIBE and wait for Redis to confirm it, so nothing published after
        this returns can be missed."""
        pubsub = self._pubsub
        if pubsub is None:
            raise Unavailable("The broker subscription is not open.")
        self._channels.add(channel)
        waiter = self._waiting.get(channel)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting[channel] = waiter
        await self._call(lambda: pubsub.subscribe(self._ns + channel))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=5)
        except TimeoutError as err:
            raise Unavailable("The broker did not confirm a subscription.") from err

    async def unsubscribe(self, channel: str) -> None:
        """UNSUBSCRIBE."""
        self._channels.discard(channel)
        pubsub = self._pubsub
        if pubsub is not None:
            await self._call(lambda: pubsub.unsubscribe(self._ns + channel))

    def limits_storage(self) -> Storage:
        """The limits library's Redis storage, through redis-py as well."""
        # On our own pool, so closing the broker closes its connections too.
        return RedisStorage(
            "async+" + self._url,
            implementation="redispy",
            key_prefix="limits",
            connection_pool=self._client.connection_pool,
        )
