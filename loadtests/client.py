"""The benchmark's asyncio client: pages and phones speaking the public contract.

One ``Client`` talks to one server (qrlogin or the baseline) through two aiohttp
sessions: a pooled one for HTTP requests and an unpooled one for WebSockets, so
ten thousand open sockets never starve the HTTP pool. Everything here is bounded:
every wait has a timeout, and every run has a count and a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

STEP_TIMEOUT = 10.0  # seconds any one request or frame may take before a flow fails


class FlowError(Exception):
    """A flow went wrong; ``stage`` says where, for the error tally."""

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"{stage}: {detail}")
        self.stage = stage


@dataclass(frozen=True, slots=True)
class Phone:
    """A logged-in app: the headers its calls carry."""

    account: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Frame:
    """One state frame and when it arrived (perf_counter and wall clock)."""

    body: dict[str, Any]
    at: float
    wall: float


@dataclass(frozen=True, slots=True)
class FlowTiming:
    """What one full flow measured, in seconds.

    ``push`` is the headline: from the moment the phone's confirm request is
    started until the confirmed frame is read on the page's socket. ``server_push``
    is the part after the server stamped the transition (``changed_at``) until the
    frame arrived, on the same machine's wall clock; the rest of ``push`` is the
    confirm request's way in (parsing, authentication, rate limit, compare-and-set).
    """

    push: float
    server_push: float
    total: float


@dataclass(slots=True)
class RunStats:
    """Outcome of many flows."""

    started: int = 0
    completed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    timings: list[FlowTiming] = field(default_factory=list)
    elapsed: float = 0.0
    shed: int = 0  # open-loop arrivals skipped because too many were in flight

    def error(self, stage: str) -> None:
        """Count one failed flow under its stage."""
        self.errors[stage] = self.errors.get(stage, 0) + 1

    @property
    def error_count(self) -> int:
        """Failed flows, all stages."""
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        """Completed flows per second."""
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0


class Watcher:
    """A page's authenticated socket on one session."""

    __slots__ = ("qr_id", "ws")

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, qr_id: str) -> None:
        self.ws = ws
        self.qr_id = qr_id

    async def next_state(self, timeout: float = STEP_TIMEOUT) -> Frame:
        """The next state frame; anything else on the way is skipped."""
        deadline = time.perf_counter() + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise FlowError("ws_frame", "timed out waiting for a state frame")
            message = await self.ws.receive(timeout=left)
            at, wall = time.perf_counter(), time.time()
            if message.type == aiohttp.WSMsgType.TEXT:
                body = json.loads(message.data)
                if body.get("type") == "state":
                    return Frame(body, at, wall)
                if body.get("type") == "error":
                    raise FlowError(
                        f"ws_error:{body.get('code')}", str(body.get("message"))
                    )
                continue
            raise FlowError("ws_closed", f"{message.type.name} {message.data!r}")

    async def expect(self, state: str, timeout: float = STEP_TIMEOUT) -> Frame:
        """The next state frame, which must be in state."""
        frame = await self.next_state(timeout)
        if frame.body.get("state") != state:
            raise FlowError(
                "ws_state", f"wanted {state}, got {frame.body.get('state')}"
            )
        return frame

    async def expect_close(self, timeout: float = STEP_TIMEOUT) -> int | None:
        """Wait for the server's close; returns the code its close frame carried.

        The code comes from the close frame itself: aiohttp's own ``close_code``
        turns into 1006 when the server drops the TCP connection before our
        answering close frame is written, which is a race on our side, not an
        abnormal close by the server.
        """
        message = await self.ws.receive(timeout=timeout)
        if message.type == aiohttp.WSMsgType.CLOSE:
            code = int(message.data)
        elif message.type == aiohttp.WSMsgType.CLOSED:
            code = self.ws.close_code or 0
        else:
            raise FlowError("ws_close", f"expected a close, got {message.type.name}")
        await self.close()
        return code

    async def close(self) -> None:
        """Close from the client side (a page navigating away)."""
        with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
            await self.ws.close()


class Client:
    """Pages and phones against one server at base_url."""

    def __init__(self, base_url: str, *, http_connections: int = 256) -> None:
        self.base = base_url.rstrip("/")
        self.ws_base = "ws" + self.base.removeprefix("http")
        timeout = aiohttp.ClientTimeout(
            total=STEP_TIMEOUT * 3, sock_connect=STEP_TIMEOUT
        )
        # No cookies: every flow is a fresh visit to the login page, as a new
        # browser would make it (a logged-in browser would also owe a CSRF token).
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=http_connections, limit_per_host=http_connections
            ),
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.sockets = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        """Close both sessions."""
        await self.http.close()
        await self.sockets.close()

    async def _post(
        self, stage: str, path: str, *, body: Any = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            async with self.http.post(
                self.base + path, json={} if body is None else body, headers=headers
            ) as response:
                payload = await response.read()
                if response.status >= 300:
                    raise FlowError(stage, f"{response.status} {payload[:200]!r}")
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise FlowError(stage, repr(err)) from err
        return json.loads(payload) if payload else {}

    # -- phone ------------------------------------------------------------------

    async def login(self, account: str, password: str) -> Phone:
        """POST /api/app/login."""
        body = {"account": account, "password": password, "device": "bench"}
        reply = await self._post("login", "/api/app/login", body=body)
        return Phone(account, {"Authorization": f"Bearer {reply['token']}"})

    async def phone(self, phone: Phone, qr_id: str, action: str) -> dict[str, Any]:
        """POST /api/app/qr/{id}/scan, /confirm or /cancel."""
        token = phone.headers["Authorization"].removeprefix("Bearer ")
        return await self._post(action, f"/api/app/qr/{qr_id}/{action}", token=token)

    # -- page -------------------------------------------------------------------

    async def create(self) -> dict[str, Any]:
        """POST /api/qr/sessions."""
        return await self._post("create", "/api/qr/sessions")

    async def watch(
        self, created: dict[str, Any], *, read_snapshot: bool = True
    ) -> Watcher:
        """Open the session's socket, authenticate, and read the pending snapshot."""
        qr_id = created["id"]
        try:
            ws = await self.sockets.ws_connect(
                f"{self.ws_base}/ws/qr/{qr_id}", autoping=True, compress=0
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise FlowError("ws_connect", repr(err)) from err
        watcher = Watcher(ws, qr_id)
        try:
            await ws.send_str(
                json.dumps({"type": "auth", "token": created["watch_token"]})
            )
            if read_snapshot:
                await watcher.expect("pending")
        except BaseException:
            await watcher.close()
            raise
        return watcher

    async def redeem(self, created: dict[str, Any], ticket: str) -> dict[str, Any]:
        """POST /api/qr/sessions/{id}/redeem."""
        return await self._post(
            "redeem",
            f"/api/qr/sessions/{created['id']}/redeem",
            body={"ticket": ticket},
            token=created["watch_token"],
        )

    # -- journeys ---------------------------------------------------------------

    async def flow(self, phone: Phone) -> FlowTiming:
        """One full login: create, watch, scan, confirm, redeem.

        That is four HTTP requests and one WebSocket upgrade from the client, one
        auth frame up, four state frames down, and the server's close (1000).
        """
        start = time.perf_counter()
        created = await self.create()
        watcher = await self.watch(created)
        try:
            await self.phone(phone, created["id"], "scan")
            await watcher.expect("scanned")
            sent = time.perf_counter()
            confirm = asyncio.ensure_future(self.phone(phone, created["id"], "confirm"))
            try:
                confirmed = await watcher.expect("confirmed")
            finally:
                await confirm
            push = confirmed.at - sent
            server_push = confirmed.wall - float(confirmed.body["changed_at"])
            ticket = confirmed.body.get("ticket")
            if not ticket:
                raise FlowError("ticket", "the confirmed frame carried no ticket")
            await self.redeem(created, ticket)
            await watcher.expect("consumed")
            code = await watcher.expect_close()
            if code != 1000:
                raise FlowError("ws_close", f"closed with {code}, wanted 1000")
        finally:
            await watcher.close()
        return FlowTiming(push, server_push, time.perf_counter() - start)


async def run_closed_loop(
    client: Client,
    phones: Sequence[Phone],
    *,
    concurrency: int,
    total: int,
    duration: float,
    progress: Callable[[RunStats], None] | None = None,
    progress_every: int = 0,
) -> RunStats:
    """Up to total flows, concurrency at a time, for at most duration seconds."""
    stats = RunStats()
    deadline = time.perf_counter() + duration
    start = time.perf_counter()

    async def worker(index: int) -> None:
        phone = phones[index % len(phones)]
        while stats.started < total and time.perf_counter() < deadline:
            stats.started += 1
            try:
                stats.timings.append(await client.flow(phone))
                stats.completed += 1
            except FlowError as err:
                stats.error(err.stage)
            except (TimeoutError, aiohttp.ClientError, OSError):
                stats.error("transport")
            done = stats.completed + stats.error_count
            if progress is not None and progress_every and done % progress_every == 0:
                stats.elapsed = time.perf_counter() - start
                progress(stats)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    stats.elapsed = time.perf_counter() - start
    return stats


async def run_open_loop(
    client: Client,
    phones: Sequence[Phone],
    *,
    rate: float,
    duration: float,
    max_in_flight: int,
) -> RunStats:
    """Start flows at a fixed rate (open loop) for duration seconds.

    Arrivals do not wait for earlier flows, as real users do not; when
    max_in_flight flows are already running an arrival is shed and counted.
    """
    stats = RunStats()
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task[None]] = set()
    interval = 1.0 / rate
    arrivals = max(1, int(rate * duration))

    async def one(phone: Phone) -> None:
        try:
            stats.timings.append(await client.flow(phone))
            stats.completed += 1
        except FlowError as err:
            stats.error(err.stage)
        except (TimeoutError, aiohttp.ClientError, OSError):
            stats.error("transport")

    start = loop.time()
    for index in range(arrivals):
        delay = start + index * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= max_in_flight:
            stats.shed += 1
            continue
        stats.started += 1
        task = asyncio.ensure_future(one(phones[index % len(phones)]))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight, timeout=STEP_TIMEOUT * 6)
    stats.elapsed = loop.time() - start
    return stats


async def bounded_gather(
    jobs: Sequence[Callable[[], Any]], *, concurrency: int
) -> list[Any]:
    """Run coroutine factories, at most concurrency at a time; results in order.

    A failed job's result is its exception, so one bad socket does not lose the
    other nine thousand.
    """
    results: list[Any] = [None] * len(jobs)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(jobs):
            index = next_index
            next_index += 1
            try:
                results[index] = await jobs[index]()
            except Exception as err:  # noqa: BLE001 - kept and counted by the caller
                results[index] = err

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results
