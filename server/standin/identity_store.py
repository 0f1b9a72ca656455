"""Storage of the 一证通 stand-in: one SQLite file (or memory) behind one lock.

The stand-in is a separate system with its own accounts, so it keeps its own
file instead of sharing the portal's database. The standard library's sqlite3 is
enough: every statement runs in a worker thread under one lock, which keeps the
event loop free and the single connection safe. Codes, tokens, sessions and
reset tokens are stored as SHA-256 hashes, so a copied file opens no doors.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS enterprises (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL UNIQUE,
    login_name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    enterprise_name TEXT NOT NULL,
    uscc TEXT NOT NULL UNIQUE,
    contact_phone TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    enterprise_id INTEGER NOT NULL REFERENCES enterprises (id),
    auth_time REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    enterprise_id INTEGER NOT NULL REFERENCES enterprises (id),
    nonce TEXT NOT NULL,
    challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    auth_time REAL NOT NULL,
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    enterprise_id INTEGER NOT NULL REFERENCES enterprises (id),
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS resets (
    token_hash TEXT PRIMARY KEY,
    enterprise_id INTEGER NOT NULL REFERENCES enterprises (id),
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    private_jwk TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

ENTERPRISE_COLUMNS = (
    "id, subject, login_name, enterprise_name, uscc, contact_phone, password_hash, "
    "created_at"
)


def hash_secret(value: str) -> str:
    """The stored form of a code, token or session id."""
    return hashlib.sha256(value.encode()).hexdigest()


class Duplicate(Exception):
    """An enterprise with this login name or USCC exists; ``field`` says which."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


@dataclass(frozen=True, slots=True)
class Enterprise:
    """One 一证通 enterprise account."""

    id: int
    subject: str
    login_name: str
    enterprise_name: str
    uscc: str
    contact_phone: str
    password_hash: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Grant:
    """What an authorization code stands for until it is traded."""

    client_id: str
    redirect_uri: str
    enterprise_id: int
    nonce: str
    challenge: str
    scope: str
    auth_time: float
    expires_at: float


class IdentityStore:
    """Every statement of the stand-in; each method is one short transaction."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Open (or create) the file and its tables."""

        def connect() -> sqlite3.Connection:
            target = ":memory:" if self.path is None else str(self.path)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA foreign_keys = ON")
            if self.path is not None:
                db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
            return db

        self._db = await asyncio.to_thread(connect)

    async def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run work in a thread, alone on the connection, inside one transaction."""

        def locked() -> T:
            assert self._db is not None, "store is not open"
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result

        return await asyncio.to_thread(locked)

    # -- enterprises -------------------------------------------------------------------

    async def create_enterprise(self, **values: Any) -> Enterprise:
        """Insert an enterprise; Duplicate if its login name or USCC is taken."""

        def work(db: sqlite3.Connection) -> Enterprise:
            for field in ("login_name", "uscc"):
                found = db.execute(
                    f"SELECT 1 FROM enterprises WHERE {field} = ?", (values[field],)
                ).fetchone()
                if found:
                    raise Duplicate(field)
            names = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            cursor = db.execute(
                f"INSERT INTO enterprises ({names}) VALUES ({marks})",
                tuple(values.values()),
            )
            created = _enterprise(db, "id = ?", cursor.lastrowid)
            assert created is not None
            return created

        return await self._run(work)

    async def fetch_enterprise(
        self, *, login_name: str | None = None, enterprise_id: int | None = None
    ) -> Enterprise | None:
        """The enterprise with this login name (any case) or id, or None."""
        where, value = "id = ?", cast(object, enterprise_id)
        if login_name is not None:
            where, value = "login_name = ?", login_name
        return await self._run(lambda db: _enterprise(db, where, value))

    async def update_password(self, enterprise_id: int, password_hash: str) -> None:
        """Set a new password and end every session of the enterprise."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE enterprises SET password_hash = ? WHERE id = ?",
                (password_hash, enterprise_id),
            )
            db.execute("DELETE FROM sessions WHERE enterprise_id = ?", (enterprise_id,))

        await self._run(work)

    # -- browser sessions at the stand-in ---------------------------------------------

    async def insert_session(
        self, token: str, enterprise_id: int, *, now: float, expires_at: float
    ) -> None:
        """Remember a logged-in browser."""
        await self._run(
            lambda db: db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (hash_secret(token), enterprise_id, now, expires_at),
            )
        )

    async def fetch_session(
        self, token: str, *, now: float
    ) -> tuple[Enterprise, float] | None:
        """(enterprise, auth_time) of a live session, or None."""

        def work(db: sqlite3.Connection) -> tuple[Enterprise, float] | None:
            row = db.execute(
                "SELECT enterprise_id, auth_time FROM sessions "
                "WHERE token_hash = ? AND expires_at > ?",
                (hash_secret(token), now),
            ).fetchone()
            if row is None:
                return None
            found = _enterprise(db, "id = ?", row[0])
            return (found, row[1]) if found else None

        return await self._run(work)

    async def delete_session(self, token: str) -> None:
        """Forget a browser's session (logout)."""
        await self._run(
            lambda db: db.execute(
                "DELETE FROM sessions WHERE token_hash = ?", (hash_secret(token),)
            )
        )

    # -- codes and access tokens ------------------------------------------------------

    async def insert_code(self, code: str, grant: Grant) -> None:
        """Store a new authorization code."""
        await self._run(
            lambda db: db.execute(
                "INSERT INTO codes (code_hash, client_id, redirect_uri, enterprise_id, "
                "nonce, challenge, scope, auth_time, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    hash_secret(code),
                    grant.client_id,
                    grant.redirect_uri,
                    grant.enterprise_id,
                    grant.nonce,
                    grant.challenge,
                    grant.scope,
                    grant.auth_time,
                    grant.expires_at,
                ),
            )
        )

    async def spend_code(self, code: str) -> tuple[Grant | None, bool]:
        """Mark a code used: (its grant, False) the first time.

        A second use returns (None, True) and revokes the access tokens the first
        use issued, as RFC 6749 4.1.2 advises; an unknown code is (None, False).
        """
        key = hash_secret(code)

        def work(db: sqlite3.Connection) -> tuple[Grant | None, bool]:
            row = db.execute(
                "UPDATE codes SET used = 1 WHERE code_hash = ? AND used = 0 RETURNING "
                "client_id, redirect_uri, enterprise_id, nonce, challenge, scope, "
                "auth_time, expires_at",
                (key,),
            ).fetchone()
            if row is not None:
                return Grant(*row), False
            replayed = db.execute(
                "SELECT 1 FROM codes WHERE code_hash = ?", (key,)
            ).fetchone()
            if replayed:
                db.execute("DELETE FROM tokens WHERE code_hash = ?", (key,))
            return None, bool(replayed)

        return await self._run(work)

    async def insert_token(
        self,
        token: str,
        *,
        code: str,
        client_id: str,
        enterprise_id: int,
        expires_at: float,
    ) -> None:
        """Store an access token issued for a code."""
        await self._run(
            lambda db: db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?)",
                (
                    hash_secret(token),
                    hash_secret(code),
                    client_id,
                    enterprise_id,
                    expires_at,
                ),
            )
        )

    async def fetch_token(self, token: str, *, now: float) -> Enterprise | None:
        """The enterprise behind a live access token, or None."""

        def work(db: sqlite3.Connection) -> Enterprise | None:
            row = db.execute(
                "SELECT enterprise_id FROM tokens "
                "WHERE token_hash = ? AND expires_at > ?",
                (hash_secret(token), now),
            ).fetchone()
            return _enterprise(db, "id = ?", row[0]) if row else None

        return await self._run(work)

    # -- password resets -------------------------------------------------------------

    async def insert_reset(
        self, token: str, enterprise_id: int, *, expires_at: float
    ) -> None:
        """Store a reset token; an enterprise's older ones are dropped."""

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM resets WHERE enterprise_id = ?", (enterprise_id,))
            db.execute(
                "INSERT INTO resets VALUES (?, ?, ?)",
                (hash_secret(token), enterprise_id, expires_at),
            )

        await self._run(work)

    async def take_reset(self, token: str, *, now: float) -> int | None:
        """Spend a live reset token: the enterprise id, once; else None."""

        def work(db: sqlite3.Connection) -> int | None:
            row = db.execute(
                "DELETE FROM resets WHERE token_hash = ? RETURNING enterprise_id, "
                "expires_at",
                (hash_secret(token),),
            ).fetchone()
            return int(row[0]) if row and row[1] > now else None

        return await self._run(work)

    # -- signing key and housekeeping ------------------------------------------------

    async def fetch_signing_key(self) -> str | None:
        """The newest stored private JWK (JSON), or None."""
        row = await self._run(
            lambda db: db.execute(
                "SELECT private_jwk FROM signing_keys ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
        )
        return str(row[0]) if row else None

    async def insert_signing_key(
        self, kid: str, private_jwk: str, *, now: float
    ) -> None:
        """Keep the signing key, so tokens verify across restarts."""
        await self._run(
            lambda db: db.execute(
                "INSERT INTO signing_keys VALUES (?, ?, ?)", (kid, private_jwk, now)
            )
        )

    async def sweep(self, *, now: float) -> None:
        """Forget expired sessions, codes, tokens and resets."""

        def work(db: sqlite3.Connection) -> None:
            for table in ("sessions", "codes", "tokens", "resets"):
                db.execute(f"DELETE FROM {table} WHERE expires_at < ?", (now,))

        await self._run(work)


def _enterprise(db: sqlite3.Connection, where: str, value: object) -> Enterprise | None:
    """One enterprise by a condition with one parameter, or None."""
    row = db.execute(
        f"SELECT {ENTERPRISE_COLUMNS} FROM enterprises WHERE {where}", (value,)
    ).fetchone()
    return Enterprise(*row) if row else None
