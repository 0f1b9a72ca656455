"""Locust journeys of real people logging in to the PC site with their phone.

Two kinds of user, each made of the two actors of the flow:

- ``PcPage``: the browser's login page. It creates a QR session, watches it over
  the WebSocket (``websockets.sync.client``, which runs cooperatively under
  locust's gevent), and redeems the ticket that the confirmed frame carries.
- ``PhoneApp``: the logged-in app. It logs in once, then scans, confirms or
  declines.

``QrLoginUser`` walks the happy path: page shows the QR, phone scans and
confirms, page redeems. ``MixedJourneyUser`` mixes that with declines, QR codes
that nobody scans until they expire, and pages that watch by long-poll.

Besides the HTTP requests, these entries appear in locust's table:

- ``WS /ws/qr/[id] connect+auth``: upgrade, auth frame, pending snapshot;
- ``WS confirm→push``: the headline; from the moment the phone starts its
  confirm request to the moment the page reads the confirmed frame;
- ``WS decline→push``, ``WS scan→push``: the same for the other transitions;
- ``WS expiry lateness``: how long after the QR's stated expiry the expired
  frame arrives, counted from when the create request was sent (the server's
  clock starts somewhere inside that request, so this is an upper bound);
- ``POLL confirm→poll``: confirm→push for a long-polling page.

Settings come from the environment:

``LOCUST_ACCOUNTS``   comma-separated phone accounts (``python -m
                      loadtests.make_users`` creates them and prints this line)
``LOCUST_PASSWORD``   their password (default ``bench-password-1``)
``LOCUST_EXPIRY_WAIT`` longest a page waits for its QR to expire, seconds (180);
                      start the server with a short ``QRLOGIN_QR_LIFETIME`` for
                      the expiry journey to finish
``LOCUST_ORIGIN``     an Origin header for the sockets, as a browser sends

The server's per-user and per-IP rate limits are meant for people, not for a
load generator on one address: raise ``QRLOGIN_LIMIT_*`` for a load test.
"""

from __future__ import annotations

import inspect
import itertools
import json
import logging
import os
import random
import time
from typing import Any

import gevent
from locust import FastHttpUser, between, events, task
from locust.exception import StopUser
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

log = logging.getLogger("qr-journeys")

ACCOUNTS = [
    a.strip() for a in os.environ.get("LOCUST_ACCOUNTS", "").split(",") if a.strip()
]
PASSWORD = os.environ.get("LOCUST_PASSWORD", "bench-password-1")
EXPIRY_WAIT = float(os.environ.get("LOCUST_EXPIRY_WAIT", "180"))
ORIGIN = os.environ.get("LOCUST_ORIGIN") or None
STEP_TIMEOUT = 15.0  # seconds one request or frame may take
FINAL = ("consumed", "cancelled", "expired")

# websockets 17 asks callers that close sockets themselves, as we do, to say so;
# older releases have no such flag.
_CONNECT_DIRECTLY: dict[str, Any] = (
    {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}
)

# Phones are spread over the accounts; each process starts at a random one so
# that several locust processes do not all pile onto the first account.
_accounts = itertools.cycle(
    random.sample(ACCOUNTS, len(ACCOUNTS)) if ACCOUNTS else [""]
)


class JourneyFailed(Exception):
    """A step went wrong; already reported to locust, so the journey just ends."""


def report(
    request_type: str,
    name: str,
    started: float,
    *,
    length: int = 0,
    error: BaseException | None = None,
    ended: float | None = None,
) -> float:
    """Fire one locust request event timed from started (perf_counter)."""
    elapsed = ((ended or time.perf_counter()) - started) * 1000
    events.request.fire(
        request_type=request_type,
        name=name,
        response_time=elapsed,
        response_length=length,
        response=None,
        context={},
        exception=error,
    )
    return elapsed


CSRF_COOKIE = "qrl_csrf"


def csrf_header(client: Any) -> dict[str, str]:
    """The double-submit header the site's own scripts send with their writes.

    Once a page has logged in, its browser holds the session cookie, and the
    server then wants every cookie-borne write to echo the CSRF cookie in
    X-CSRF-Token, as the login page's script does.
    """
    for cookie in getattr(client, "cookiejar", ()):
        if cookie.name == CSRF_COOKIE:
            return {"X-CSRF-Token": str(cookie.value)}
    return {}


def _post(
    client: Any,
    path: str,
    name: str,
    *,
    body: dict[str, Any] | None = None,
    token: str | None = None,
    expect: int = 200,
) -> dict[str, Any]:
    """POST JSON through locust's client; a wrong status is a failure and ends it."""
    headers = {"Authorization": f"Bearer {token}"} if token else csrf_header(client)
    with client.post(
        path, json=body or {}, headers=headers, name=name, catch_response=True
    ) as response:
        if response.status_code != expect:
            response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
            raise JourneyFailed(name)
        try:
            return dict(response.json())
        except ValueError as err:
            response.failure(f"not JSON: {err}")
            raise JourneyFailed(name) from err


class PageSocket:
    """The page's WebSocket: frames are stamped the moment they are read."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    def open(cls, host: str, qr_id: str, watch_token: str) -> PageSocket:
        """Connect, authenticate, and read the pending snapshot."""
        url = "ws" + host.rstrip("/").removeprefix("http") + f"/ws/qr/{qr_id}"
        name = "/ws/qr/[id] connect+auth"
        started = time.perf_counter()
        try:
            ws = connect(
                url,
                **_CONNECT_DIRECTLY,
                origin=ORIGIN,  # type: ignore[arg-type]
                compression=None,
                open_timeout=STEP_TIMEOUT,
                close_timeout=2,
                user_agent_header="locust-qr-page",
            )
        except (OSError, WebSocketException, TimeoutError) as err:
            report("WS", name, started, error=err)
            raise JourneyFailed(name) from err
        page = cls(ws)
        try:
            ws.send(json.dumps({"type": "auth", "token": watch_token}))
            frame, _ = page.next_state()
            if frame.get("state") != "pending":
                raise JourneyFailed(f"first frame was {frame.get('state')}")
        except (JourneyFailed, ConnectionClosed, TimeoutError) as err:
            report("WS", name, started, error=err)
            page.close()
            raise JourneyFailed(name) from err
        report("WS", name, started)
        return page

    def next_state(self, timeout: float = STEP_TIMEOUT) -> tuple[dict[str, Any], float]:
        """The next state frame and when it was read (perf_counter)."""
        deadline = time.perf_counter() + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("no state frame in time")
            text = self.ws.recv(timeout=left)
            read_at = time.perf_counter()
            frame = json.loads(text)
            if frame.get("type") == "state":
                return frame, read_at
            if frame.get("type") == "error":
                raise JourneyFailed(f"error frame {frame.get('code')}")

    def read(
        self, state: str, timeout: float = STEP_TIMEOUT
    ) -> tuple[dict[str, Any], float]:
        """The next state frame, which must be state, and when it was read."""
        try:
            frame, read_at = self.next_state(timeout)
        except (ConnectionClosed, TimeoutError) as err:
            raise JourneyFailed(f"waiting for {state}: {err!r}") from err
        if frame.get("state") != state:
            raise JourneyFailed(f"wanted {state}, got {frame.get('state')}")
        return frame, read_at

    def expect(
        self,
        state: str,
        name: str,
        since: float | None = None,
        timeout: float = STEP_TIMEOUT,
    ) -> dict[str, Any]:
        """Read state's frame; with since (perf_counter), report the delay as name."""
        started = time.perf_counter() if since is None else since
        try:
            frame, read_at = self.read(state, timeout)
        except JourneyFailed as err:
            report("WS", name, started, error=err)
            raise
        if since is not None:
            report("WS", name, started, ended=read_at, length=len(json.dumps(frame)))
        return frame

    def expect_done(self) -> None:
        """After a final state the server closes with 1000; anything else fails."""
        started = time.perf_counter()
        try:
            self.ws.recv(timeout=STEP_TIMEOUT)
            error: BaseException | None = JourneyFailed("a frame after the final state")
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            error = None if code == 1000 else JourneyFailed(f"closed with {code}")
        except TimeoutError as err:
            error = err
        if error is not None:
            report("WS", "close after final state", started, error=error)

    def close(self) -> None:
        """Leave the page."""
        try:
            self.ws.close()
        except (OSError, WebSocketException):
            pass


class PhoneApp:
    """The phone app of one account: logs in once, then answers QR codes."""

    def __init__(self, client: Any, account: str) -> None:
        self.client = client
        self.account = account
        self.token = ""

    def login(self) -> None:
        """POST /api/app/login."""
        reply = _post(
            self.client,
            "/api/app/login",
            "/api/app/login",
            body={"account": self.account, "password": PASSWORD, "device": "locust"},
        )
        self.token = str(reply["token"])

    def scan(self, qr_id: str) -> dict[str, Any]:
        """POST /api/app/qr/{id}/scan: what the confirm screen shows."""
        return _post(
            self.client,
            f"/api/app/qr/{qr_id}/scan",
            "/api/app/qr/[id]/scan",
            token=self.token,
        )

    def answer(self, qr_id: str, action: str) -> float:
        """POST confirm or cancel; returns when it started (perf_counter)."""
        started = time.perf_counter()
        _post(
            self.client,
            f"/api/app/qr/{qr_id}/{action}",
            f"/api/app/qr/[id]/{action}",
            token=self.token,
        )
        return started

    def try_answer(self, qr_id: str, action: str) -> float | None:
        """answer for a greenlet of its own: a failure (already reported) is None."""
        try:
            return self.answer(qr_id, action)
        except JourneyFailed:
            return None


class PcPage:
    """The PC login page: shows a QR code and waits for it to be answered."""

    def __init__(self, client: Any, host: str) -> None:
        self.client = client
        self.host = host
        self.session: dict[str, Any] = {}
        self.socket: PageSocket | None = None
        self.asked_at = 0.0  # when the create request was sent (perf_counter)

    def show_qr(self, *, watch: bool = True) -> str:
        """Create the session and, unless long-polling, open its socket."""
        self.asked_at = time.perf_counter()
        self.session = _post(
            self.client, "/api/qr/sessions", "/api/qr/sessions", expect=201
        )
        if watch:
            self.socket = PageSocket.open(
                self.host, self.session["id"], self.session["watch_token"]
            )
        return str(self.session["id"])

    @property
    def qr_id(self) -> str:
        """The session on screen."""
        return str(self.session["id"])

    def redeem(self, ticket: str) -> None:
        """Trade the ticket for the session cookie."""
        _post(
            self.client,
            f"/api/qr/sessions/{self.qr_id}/redeem",
            "/api/qr/sessions/[id]/redeem",
            body={"ticket": ticket},
            token=self.session["watch_token"],
        )

    def long_poll(self, since: int, wait: float = 25.0) -> tuple[dict[str, Any], float]:
        """GET the session, returning when its version passes since."""
        path = f"/api/qr/sessions/{self.qr_id}?wait={wait:g}&since={since}"
        with self.client.get(
            path,
            headers={"Authorization": f"Bearer {self.session['watch_token']}"},
            name="/api/qr/sessions/[id]?wait",
            catch_response=True,
        ) as response:
            read_at = time.perf_counter()
            if response.status_code != 200:
                response.failure(
                    f"{response.status_code}: {(response.text or '')[:200]}"
                )
                raise JourneyFailed("long-poll")
            return dict(response.json()), read_at

    def try_long_poll(self, since: int) -> tuple[dict[str, Any], float] | None:
        """long_poll for a greenlet of its own: a failure (already reported) is None."""
        try:
            return self.long_poll(since)
        except JourneyFailed:
            return None

    def leave(self) -> None:
        """Close the socket, if any."""
        if self.socket is not None:
            self.socket.close()
            self.socket = None


class _TwoActors(FastHttpUser):
    """A person at a PC with their phone; subclasses pick the journeys."""

    abstract = True
    wait_time = between(1, 3)

    def on_start(self) -> None:
        """Log the phone in once, as the app stays logged in."""
        if not ACCOUNTS:
            log.error("set LOCUST_ACCOUNTS (python -m loadtests.make_users prints it)")
            raise StopUser()
        self.phone = PhoneApp(self.client, next(_accounts))
        try:
            self.phone.login()
        except JourneyFailed as err:
            raise StopUser() from err

    def page(self) -> PcPage:
        """A fresh login page in this person's browser."""
        if not self.host:
            raise StopUser("run locust with -H http://HOST:PORT")
        return PcPage(self.client, self.host)

    def _answer_while_page_waits(
        self, page: PcPage, action: str, state: str, name: str
    ) -> dict[str, Any]:
        """The phone answers in its own greenlet while the page blocks on its socket.

        Two greenlets keep the actors apart: the page's read returns when the
        frame arrives, not when the phone's HTTP response does. The delay is
        reported from the phone's own start stamp to the page's read stamp.
        """
        assert page.socket is not None
        phone = gevent.spawn(self.phone.try_answer, page.qr_id, action)
        try:
            frame, read_at = page.socket.read(state)
        except JourneyFailed as err:
            report("WS", name, time.perf_counter(), error=err)
            raise
        finally:
            phone.join(timeout=STEP_TIMEOUT)
        sent = phone.value if phone.ready() else None
        if sent is None:
            raise JourneyFailed(action)  # the phone's request failed and was reported
        report("WS", name, sent, ended=read_at, length=len(json.dumps(frame)))
        return frame

    def login_with_phone(self) -> None:
        """Scan, confirm, see the push, redeem, see consumed and the close."""
        page = self.page()
        try:
            page.show_qr()
            assert page.socket is not None
            scan_sent = time.perf_counter()
            self.phone.scan(page.qr_id)
            page.socket.expect("scanned", "scan→push", since=scan_sent)
            frame = self._answer_while_page_waits(
                page, "confirm", "confirmed", "confirm→push"
            )
            ticket = frame.get("ticket")
            if not ticket:
                report(
                    "WS",
                    "confirm→push",
                    time.perf_counter(),
                    error=JourneyFailed("no ticket in the confirmed frame"),
                )
                return
            page.redeem(str(ticket))
            page.socket.expect("consumed", "redeem→push")
            page.socket.expect_done()
        except JourneyFailed:
            pass
        finally:
            page.leave()


class QrLoginUser(_TwoActors):
    """The happy path: show the QR, scan, confirm, redeem."""

    weight = 4

    @task
    def scan_to_login(self) -> None:
        """One login."""
        self.login_with_phone()


class MixedJourneyUser(_TwoActors):
    """Logins mixed with declines, expiries and long-polling pages."""

    weight = 1

    @task(6)
    def confirm(self) -> None:
        """A login, as QrLoginUser does it."""
        self.login_with_phone()

    @task(2)
    def decline(self) -> None:
        """The phone declines; the page shows cancelled and the socket ends."""
        page = self.page()
        try:
            page.show_qr()
            assert page.socket is not None
            self.phone.scan(page.qr_id)
            page.socket.expect("scanned", "scan→push")
            self._answer_while_page_waits(page, "cancel", "cancelled", "decline→push")
            page.socket.expect_done()
        except JourneyFailed:
            pass
        finally:
            page.leave()

    @task(1)
    def expire(self) -> None:
        """Nobody scans: the page waits for its QR code to expire."""
        page = self.page()
        try:
            page.show_qr()
            assert page.socket is not None
            lifetime = float(page.session.get("expires_in", 120))
            # The server counts from its own create, somewhere between sending
            # the request and its reply: from the send, lateness is never low.
            due = page.asked_at + lifetime
            if lifetime + 5 > EXPIRY_WAIT:
                # Hold the page open as a waiting page, then walk away.
                gevent.sleep(EXPIRY_WAIT)
                return
            page.socket.expect("expired", "expiry", timeout=lifetime + 5)
            report("WS", "expiry lateness", due)
            page.socket.expect_done()
        except JourneyFailed:
            pass
        finally:
            page.leave()

    @task(1)
    def long_poll_login(self) -> None:
        """A page without WebSockets: the long-poll fallback, then redeem."""
        page = self.page()
        try:
            page.show_qr(watch=False)
            version = int(page.session["version"])
            self.phone.scan(page.qr_id)
            frame, _ = page.long_poll(since=version, wait=5)
            version = int(frame["version"])
            poller = gevent.spawn(page.try_long_poll, version)
            gevent.sleep(0.05)  # the page's request is out before the phone answers
            sent = self.phone.answer(page.qr_id, "confirm")
            polled = poller.get(timeout=30)
            if polled is None:
                return
            frame, read_at = polled
            if frame.get("state") != "confirmed" or not frame.get("ticket"):
                report(
                    "POLL",
                    "confirm→poll",
                    sent,
                    error=JourneyFailed(f"got {frame.get('state')}"),
                )
                return
            report("POLL", "confirm→poll", sent, ended=read_at)
            page.redeem(str(frame["ticket"]))
        except (JourneyFailed, gevent.Timeout):
            pass


@events.test_start.add_listener
def _check_accounts(environment: Any, **_: Any) -> None:
    """Say early, on every process, when the accounts are missing."""
    if not ACCOUNTS:
        log.error("LOCUST_ACCOUNTS is empty: phones cannot log in")
