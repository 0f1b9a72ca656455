"""The rules of a QR login: states, secrets, lifetimes and who may do what.

A session moves pending → scanned → confirmed → consumed, or leaves for cancelled
or expired. Every move is one compare-and-set in the broker that also publishes
the new document, so watchers on any node see each version once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, TimestampSigner
from ua_parser import parse as parse_user_agent

from server import jsontext
from server.audit import Audit
from server.auth.service import User
from server.broker import Broker
from server.broker.hub import Hub
from server.errors import Conflict, Expired, Forbidden, NotFound, Unauthorized
from server.keys import Clock
from server.settings import Settings

PENDING, SCANNED, CONFIRMED = "pending", "scanned", "confirmed"
CONSUMED, CANCELLED, EXPIRED = "consumed", "cancelled", "expired"
LIVE = (PENDING, SCANNED, CONFIRMED)
TERMINAL = (CONSUMED, CANCELLED, EXPIRED)

GRACE = 60.0  # a finished session stays readable this long, so pages see why
ID_BYTES = 18  # 144 bits
ID_LENGTH = 24  # characters of token_urlsafe(ID_BYTES)


def key(qr_id: str) -> str:
    """The broker key, and the pub/sub channel, of one session."""
    return f"qr:{qr_id}"


ID_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{ID_LENGTH}}}")


def looks_like_id(qr_id: str) -> bool:
    """Cheap shape check before any lookup: server-made ids only."""
    return ID_SHAPE.fullmatch(qr_id) is not None


@lru_cache(maxsize=2048)
def describe_agent(user_agent: str) -> tuple[str, str]:
    """Browser and OS names from a User-Agent header."""
    if not user_agent:
        return "未知浏览器", "未知系统"
    result = parse_user_agent(user_agent[:512])
    browser = result.user_agent.family if result.user_agent else "未知浏览器"
    if result.user_agent and result.user_agent.major:
        browser = f"{browser} {result.user_agent.major}"
    system = result.os.family if result.os else "未知系统"
    if result.os and result.os.major:
        system = f"{system} {result.os.major}"
    return browser, system


@lru_cache(maxsize=4096)
def same_network(a: str, b: str) -> bool:
    """Whether two addresses share a /24 (IPv4) or a /64 (IPv6)."""
    try:
        first, second = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return False
    if first.version != second.version:
        return False
    prefix = 24 if first.version == 4 else 64
    network = ipaddress.ip_network(f"{first}/{prefix}", strict=False)
    return second in network


@dataclass(frozen=True, slots=True)
class Created:
    """What the page gets back from create: the id and its watch token."""

    qr_id: str
    watch_token: str
    doc: dict[str, Any]


class QrService:
    """Create, watch, scan, confirm, cancel, redeem and expire QR sessions."""

    def __init__(
        self,
        *,
        broker: Broker,
        hub: Hub,
        audit: Audit,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._broker = broker
        self.hub = hub
        self._audit = audit
        self._settings = settings
        self.clock = clock
        secret = settings.secret_key.get_secret_value()
        self._watch = TimestampSigner(secret, salt="qr-watch")
        self._tickets = TimestampSigner(secret, salt="qr-ticket")

    # -- reading -----------------------------------------------------------------

    async def load(self, qr_id: str) -> dict[str, Any]:
        """The current document; a live one past its time is expired first."""
        if not looks_like_id(qr_id):
            raise NotFound("No such QR session.", code="unknown_session")
        raw = await self._broker.get(key(qr_id))
        if raw is None:
            raise NotFound("No such QR session.", code="unknown_session")
        doc: dict[str, Any] = jsontext.loads(raw)
        if doc["state"] in LIVE and self.clock() >= doc["expires_at"]:
            doc = await self.expire(qr_id) or doc
        return doc

    def check_watch_token(self, qr_id: str, token: str | None) -> None:
        """Raise Unauthorized unless token was issued to the page that made qr_id."""
        if not token or len(token) > 200:
            raise Unauthorized("A watch token is required.", code="bad_watch_token")
        max_age = (
            self._settings.qr_lifetime + 2 * self._settings.qr_step_lifetime + GRACE
        )
        try:
            signed_id = self._watch.unsign(token, max_age=int(max_age) + 1).decode()
        except (BadSignature, UnicodeDecodeError) as err:
            raise Unauthorized(
                "The watch token is not valid.", code="bad_watch_token"
            ) from err
        if not secrets.compare_digest(signed_id, qr_id):
            raise Unauthorized(
                "The watch token is for another session.", code="bad_watch_token"
            )

    def frame(self, doc: dict[str, Any], *, with_ticket: bool) -> dict[str, Any]:
        """The state frame a watching page gets; only it ever sees the ticket."""
        state = doc["state"]
        frame: dict[str, Any] = {
            "type": "state",
            "qr": doc["id"],
            "state": state,
            "version": doc["version"],
            "expires_in": max(0, round(doc["expires_at"] - self.clock(), 1)),
            "changed_at": doc["changed_at"],
        }
        if state in (SCANNED, CONFIRMED):
            frame["user"] = {"name": doc["user_name"], "avatar": doc["avatar"]}
        if state == CONFIRMED and with_ticket:
            frame["ticket"] = self._tickets.sign(f"{doc['id']}.{doc['nonce']}").decode()
        return frame

    # -- page side ---------------------------------------------------------------

    async def create(
        self,
        *,
        ip: str,
        user_agent: str,
        rotate_from: str | None = None,
        rotate_token: str | None = None,
    ) -> Created:
        """A new pending session with a fresh id and watch token.

        With rotate_from (and its watch token), the new session continues the old
        one's chain: the old one is expired and the chain may grow only to the
        configured number of rotations.
        """
        generation = 0
        if rotate_from is not None:
            self.check_watch_token(rotate_from, rotate_token)
            old = await self.load(rotate_from)
            generation = int(old.get("generation", 0)) + 1
            if generation > self._settings.qr_max_rotations:
                raise Conflict(
                    "Refresh the page for a new QR code.", code="rotation_limit"
                )
            if old["state"] in LIVE:
                await self.expire(rotate_from)

        now = self.clock()
        browser, system = describe_agent(user_agent)
        qr_id = secrets.token_urlsafe(ID_BYTES)
        doc: dict[str, Any] = {
            "id": qr_id,
            "state": PENDING,
            "version": 1,
            "generation": generation,
            "created_at": now,
            "changed_at": now,
            "expires_at": now + self._settings.qr_lifetime,
            "page": {"ip": ip, "browser": browser, "os": system},
            "user_id": None,
            "user_name": "",
            "avatar": "",
            "nonce": "",
        }
        ttl = self._settings.qr_lifetime + GRACE
        # A 144-bit id does not collide; only_new makes sure even so.
        if not await self._broker.put(key(qr_id), _dump(doc), ttl, only_new=True):
            raise Conflict("Try again.", code="id_collision")
        token = self._watch.sign(qr_id).decode()
        self._audit.record(
            "qr_created",
            subject=qr_id,
            ip=ip,
            user_agent=user_agent,
            generation=generation,
        )
        return Created(qr_id=qr_id, watch_token=token, doc=doc)

    async def redeem(
        self,
        qr_id: str,
        *,
        watch_token: str | None,
        ticket: str,
        ip: str,
        user_agent: str,
    ) -> int:
        """Trade a confirmed session's ticket for its user id, once.

        The ticket names the session and its nonce; the move to consumed happens
        only while the session is confirmed with that nonce and not yet expired,
        checked in the same step as the move.
        """
        self.check_watch_token(qr_id, watch_token)
        try:
            signed = self._tickets.unsign(
                ticket, max_age=int(self._settings.qr_step_lifetime) + 1
            ).decode()
        except (BadSignature, UnicodeDecodeError) as err:
            raise Unauthorized("The ticket is not valid.", code="bad_ticket") from err
        ticket_id, _, nonce = signed.partition(".")
        if not secrets.compare_digest(ticket_id, qr_id) or not nonce:
            raise Unauthorized("The ticket is not valid.", code="bad_ticket")

        now = self.clock()
        changes = {"state": CONSUMED, "changed_at": now}
        ok, doc = await self._move(
            qr_id, (CONFIRMED,), changes, ttl=GRACE, match={"nonce": nonce}, now=now
        )
        if not ok:
            await self._refused(qr_id, doc, CONFIRMED)
            raise Unauthorized("The ticket is not valid.", code="bad_ticket")
        assert doc is not None
        user_id = int(doc["user_id"])
        self._audit.record(
            "qr_redeemed", subject=qr_id, user_id=user_id, ip=ip, user_agent=user_agent
        )
        return user_id

    async def wait_for_change(
        self, qr_id: str, *, since: int | None, wait: float
    ) -> dict[str, Any]:
        """The document once its version passes since, or after wait seconds."""
        doc = await self.load(qr_id)
        since = doc["version"] if since is None else since
        if doc["version"] > since or doc["state"] in TERMINAL or wait <= 0:
            return doc

        changed = _Latch()
        channel = key(qr_id)
        await self.hub.add(channel, changed)
        try:
            doc = await self.load(qr_id)  # subscribed first, then read: nothing lost
            if doc["version"] <= since and doc["state"] not in TERMINAL:
                until_expiry = max(0.0, doc["expires_at"] - self.clock()) + 0.05
                await changed.wait(min(wait, until_expiry))
                doc = await self.load(qr_id)
        finally:
            await self.hub.remove(channel, changed)
        return doc

    # -- phone side --------------------------------------------------------------

    async def scan(
        self, qr_id: str, user: User, *, ip: str, user_agent: str
    ) -> dict[str, Any]:
        """Claim a pending session for user; returns what the confirm screen shows.

        Of concurrent scans exactly one wins; a repeat scan by the winner is answered
        again without a new transition, anyone else gets already_scanned.
        """
        doc = await self.load(qr_id)
        now = self.clock()
        if not (doc["state"] == SCANNED and doc["user_id"] == user.id):
            self._raise_unless(doc, PENDING)
            changes = {
                "state": SCANNED,
                "changed_at": now,
                "expires_at": max(
                    doc["expires_at"], now + self._settings.qr_step_lifetime
                ),
                "user_id": user.id,
                "user_name": user.masked_name,
                "avatar": user.avatar_url,
            }
            ok, current = await self._move(qr_id, (PENDING,), changes)
            if not ok:
                self._raise_unless(current, PENDING)
            doc = {**doc, **changes}
            self._audit.record(
                "qr_scanned",
                subject=qr_id,
                user_id=user.id,
                ip=ip,
                user_agent=user_agent,
            )
        page = doc["page"]
        return {
            "qr": qr_id,
            "state": SCANNED,
            "expires_in": max(0, round(doc["expires_at"] - now, 1)),
            "requester": {
                "ip": page["ip"],
                "browser": page["browser"],
                "os": page["os"],
                "requested_at": doc["created_at"],
                "same_network": same_network(page["ip"], ip),
            },
        }

    async def confirm(
        self, qr_id: str, user: User, *, ip: str, user_agent: str
    ) -> None:
        """The scanning user approves: mint the ticket's nonce and push it.

        One step checks that the session is scanned, by this user, and not
        expired, and moves it; only a refusal reads why.
        """
        if not looks_like_id(qr_id):
            raise NotFound("No such QR session.", code="unknown_session")
        now = self.clock()
        changes = {
            "state": CONFIRMED,
            "changed_at": now,
            "expires_at": now + self._settings.qr_step_lifetime,
            "nonce": secrets.token_urlsafe(16),
        }
        ok, doc = await self._move(
            qr_id, (SCANNED,), changes, match={"user_id": user.id}, now=now
        )
        if not ok:
            await self._refused(qr_id, doc, SCANNED)
            raise _not_scanner()
        assert doc is not None
        self._audit.record(
            "qr_confirmed",
            subject=qr_id,
            user_id=user.id,
            ip=ip,
            user_agent=user_agent,
            page_ip=doc["page"]["ip"],
        )

    async def cancel(self, qr_id: str, user: User, *, ip: str, user_agent: str) -> None:
        """The scanning user declines; the page shows refresh."""
        await self._owned(qr_id, user)
        changes = {"state": CANCELLED, "changed_at": self.clock()}
        ok, current = await self._move(qr_id, (SCANNED,), changes, ttl=GRACE)
        if not ok:
            self._raise_unless(current, SCANNED)
        self._audit.record(
            "qr_cancelled", subject=qr_id, user_id=user.id, ip=ip, user_agent=user_agent
        )

    async def expire(self, qr_id: str) -> dict[str, Any] | None:
        """Move a live session to expired (once, whoever calls first)."""
        changes = {"state": EXPIRED, "changed_at": self.clock()}
        ok, current = await self._move(qr_id, LIVE, changes, ttl=GRACE)
        if ok:
            self._audit.record("qr_expired", subject=qr_id)
        return current

    # -- helpers -----------------------------------------------------------------

    async def _owned(self, qr_id: str, user: User) -> dict[str, Any]:
        doc = await self.load(qr_id)
        self._raise_unless(doc, SCANNED)
        if doc["user_id"] != user.id:
            raise _not_scanner()
        return doc

    async def _refused(
        self, qr_id: str, doc: dict[str, Any] | None, wanted: str
    ) -> None:
        """After a refused move: raise why, unless the state was the wanted one.

        A live session past its time is expired on the way, as load does.
        """
        if (
            doc is not None
            and doc["state"] in LIVE
            and self.clock() >= doc["expires_at"]
        ):
            doc = await self.expire(qr_id) or doc
        self._raise_unless(doc, wanted)

    async def _move(
        self,
        qr_id: str,
        allowed: tuple[str, ...],
        changes: dict[str, Any],
        *,
        ttl: float | None = None,
        match: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> tuple[bool, dict[str, Any] | None]:
        """Transition; with now, only a session that has not expired by then."""
        if ttl is None and "expires_at" in changes:
            ttl = changes["expires_at"] - self.clock() + GRACE
        moved = await self._broker.transition(
            key(qr_id),
            allowed=allowed,
            changes=changes,
            channel=key(qr_id),
            ttl=ttl,
            match=match,
            alive_at=now,
        )
        if moved[0]:
            # Let a watcher on this node send its frame before we go on to audit
            # and answer: the push is what the page is waiting for.
            await asyncio.sleep(0)
        return moved

    @staticmethod
    def _raise_unless(doc: dict[str, Any] | None, wanted: str) -> None:
        """Map a session that is not in the wanted state to the client's error."""
        if doc is None:
            raise NotFound("No such QR session.", code="unknown_session")
        state = doc["state"]
        if state == wanted:
            return
        if state == EXPIRED:
            raise Expired("The QR code has expired.", code="expired")
        if state == SCANNED and wanted == PENDING:
            raise Conflict("The QR code was already scanned.", code="already_scanned")
        if state == CONSUMED:
            raise Conflict("The login was already completed.", code="already_consumed")
        if state == CANCELLED:
            raise Conflict("The login was cancelled.", code="cancelled")
        raise Conflict(f"The QR session is {state}.", code="wrong_state")


def _not_scanner() -> Forbidden:
    return Forbidden("Only the user who scanned may answer.", code="not_scanner")


class _Latch:
    """A listener that wakes one waiter on the next message (or resync)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __call__(self, data: str | None) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


def _dump(doc: dict[str, Any]) -> str:
    return jsontext.dumps(doc)
