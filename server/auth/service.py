"""Users, passwords and sessions: who is asking, and whether they may."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from server.audit import Audit
from server.auth import store
from server.auth.passwords import hash_password, verify_password
from server.broker import Broker
from server.errors import Invalid, Unauthorized
from server.keys import Clock
from server.settings import Settings

SessionKind = Literal["web", "app"]

USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,31}")
MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")


@dataclass(frozen=True, slots=True)
class User:
    """A portal user as the rest of the server sees one."""

    id: int
    username: str
    phone: str | None
    email: str | None
    display_name: str
    avatar_url: str
    user_type: str

    @classmethod
    def from_row(cls, row: RowMapping) -> User:
        """Build from a users row."""
        return cls(
            id=row["id"],
            username=row["username"],
            phone=row["phone"],
            email=row["email"],
            display_name=row["display_name"],
            avatar_url=row["avatar_url"],
            user_type=row["user_type"],
        )

    @property
    def name(self) -> str:
        """The name to greet the user with."""
        return self.display_name or self.username

    @property
    def masked_name(self) -> str:
        """The name with its middle hidden, for a screen someone else may see."""
        return mask(self.name)

    @property
    def masked_phone(self) -> str:
        """138****5678."""
        return f"{self.phone[:3]}****{self.phone[-4:]}" if self.phone else ""


@dataclass(frozen=True, slots=True)
class Session:
    """A browser session or an app token, as stored in the broker."""

    token_hash: str
    user_id: int
    kind: SessionKind
    created_at: float
    ip: str
    user_agent: str


def mask(name: str) -> str:
    """Hide all but the ends: 张三 → 张*, 张小三 → 张*三, alice → a***e."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * min(len(name) - 2, 4) + name[-1]


def hash_token(token: str) -> str:
    """Tokens are stored only as this hash, so a broker dump logs nobody in."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_phone(phone: str) -> str:
    """Strip +86/0086 and spaces; raise Invalid unless a mainland mobile remains."""
    digits = re.sub(r"[\s-]", "", phone)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    if not MAINLAND_MOBILE.fullmatch(digits):
        raise Invalid("Enter a mainland mobile number.", details={"phone": "invalid"})
    return digits


class AuthService:
    """Accounts and sessions over the database and the broker."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: Broker,
        audit: Audit,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._audit = audit
        self.settings = settings
        self._clock = clock

    async def create_user(
        self,
        *,
        username: str,
        password: str,
        phone: str | None = None,
        display_name: str = "",
        user_type: str = "individual",
    ) -> User:
        """Create an account; a taken username or phone is a Conflict."""
        problems: dict[str, str] = {}
        if not USERNAME.fullmatch(username):
            problems["username"] = "3-32 letters, digits or _, starting with a letter"
        if not 8 <= len(password) <= 128:
            problems["password"] = "8 to 128 characters"
        if user_type not in ("individual", "enterprise"):
            problems["user_type"] = "individual or enterprise"
        if problems:
            raise Invalid(details=problems)
        values: dict[str, Any] = {
            "username": username,
            "phone": normalise_phone(phone) if phone else None,
            "display_name": display_name[:64],
            "user_type": user_type,
            "password_hash": await hash_password(password),
        }
        async with self._engine.begin() as conn:
            user_id = await store.insert_user(conn, **values)
            row = await store.fetch_user(conn, user_id)
        assert row is not None
        self._audit.record("user_created", subject=username, user_id=user_id)
        return User.from_row(row)

    async def get_user(self, user_id: int) -> User | None:
        """One user, or None."""
        async with self._engine.connect() as conn:
            row = await store.fetch_user(conn, user_id)
        return User.from_row(row) if row else None

    async def authenticate(self, account: str, password: str) -> User:
        """The user whose username or phone and password match.

        Unknown accounts and wrong passwords fail alike, in the same time.
        """
        async with self._engine.connect() as conn:
            row = await store.fetch_user_by_account(conn, account.strip())
        matched = await verify_password(row["password_hash"] if row else None, password)
        if row is None or not matched:
            raise Unauthorized("The account or password is wrong.", code="bad_credentials")
        return User.from_row(row)

    async def open_session(
        self, user: User, kind: SessionKind, *, ip: str, user_agent: str
    ) -> str:
        """Mint a 256-bit token, store its hash, and return the token once."""
        token = secrets.token_urlsafe(32)
        token_hash = hash_token(token)
        ttl = self.settings.session_ttl if kind == "web" else self.settings.app_token_ttl
        record = {
            "user_id": user.id,
            "kind": kind,
            "created_at": self._clock(),
            "ip": ip,
            "user_agent": user_agent[:256],
        }
        await self._broker.put(store.session_key(token_hash), json.dumps(record), ttl)
        await self._broker.add_member(store.user_sessions_key(user.id), token_hash, ttl)
        return token

    async def resolve(self, token: str | None, kind: SessionKind) -> tuple[User, Session]:
        """The live session behind token and its user, or Unauthorized."""
        if not token or len(token) > 128:
            raise Unauthorized()
        token_hash = hash_token(token)
        raw = await self._broker.get(store.session_key(token_hash))
        if raw is None:
            raise Unauthorized("The session has ended; log in again.", code="session_ended")
        record = json.loads(raw)
        if record["kind"] != kind:
            raise Unauthorized()
        user = await self.get_user(record["user_id"])
        if user is None:
            raise Unauthorized("The account no longer exists.", code="session_ended")
        return user, Session(token_hash=token_hash, **record)

    async def revoke(self, token: str | None) -> None:
        """End one session; an unknown token is already ended."""
        if not token or len(token) > 128:
            return
        token_hash = hash_token(token)
        raw = await self._broker.take(store.session_key(token_hash))
        if raw is not None:
            user_id = json.loads(raw)["user_id"]
            await self._broker.remove_member(store.user_sessions_key(user_id), token_hash)
