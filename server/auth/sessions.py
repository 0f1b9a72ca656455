"""Browser sessions and app tokens: 256-bit tokens kept in the broker as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from server import jsontext
from server.auth import store
from server.errors import NotFound, Unauthorized

if TYPE_CHECKING:
    from server.audit import Audit
    from server.auth.service import User
    from server.broker import Broker
    from server.keys import Clock
    from server.settings import Settings

SessionKind = Literal["web", "app"]


@dataclass(frozen=True, slots=True)
class Session:
    """A browser session or an app token, as stored in the broker."""

    token_hash: str
    user_id: int
    kind: SessionKind
    created_at: float
    ip: str
    user_agent: str

    @property
    def public_id(self) -> str:
        """A name for the session that is safe to show and cannot log anyone in."""
        return self.token_hash[:16]


def hash_token(token: str) -> str:
    """Tokens are stored only as this hash, so a broker dump logs nobody in."""
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Open, resolve, list and end sessions; AuthService builds on this."""

    _broker: Broker
    _audit: Audit
    _clock: Clock
    settings: Settings

    async def get_user(self, user_id: int) -> User | None:
        """The user a session belongs to; AuthService reads it from the database."""
        raise NotImplementedError

    async def open_session(
        self, user: User, kind: SessionKind, *, ip: str, user_agent: str
    ) -> str:
        """Mint a 256-bit token, store its hash, and return the token once."""
        token = secrets.token_urlsafe(32)
        token_hash = hash_token(token)
        ttl = (
            self.settings.session_ttl if kind == "web" else self.settings.app_token_ttl
        )
        record = {
            "user_id": user.id,
            "kind": kind,
            "created_at": self._clock(),
            "ip": ip,
            "user_agent": user_agent[:256],
        }
        await self._broker.add_member(
            store.user_sessions_key(user.id),
            token_hash,
            ttl,
            put=(store.session_key(token_hash), jsontext.dumps(record)),
        )
        return token

    async def resolve(
        self, token: str | None, kind: SessionKind
    ) -> tuple[User, Session]:
        """The live session behind token and its user, or Unauthorized."""
        if not token or len(token) > 128:
            raise Unauthorized()
        token_hash = hash_token(token)
        raw = await self._broker.get(store.session_key(token_hash))
        if raw is None:
            raise Unauthorized(
                "The session has ended; log in again.", code="session_ended"
            )
        record = jsontext.loads(raw)
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
        await self._end(hash_token(token))

    async def _end(self, token_hash: str) -> None:
        raw = await self._broker.take(store.session_key(token_hash))
        if raw is not None:
            user_id = jsontext.loads(raw)["user_id"]
            await self._broker.remove_member(
                store.user_sessions_key(user_id), token_hash
            )

    async def sessions(self, user: User) -> list[Session]:
        """The user's live browser sessions and app tokens, newest first."""
        found = []
        for token_hash in await self._broker.members(store.user_sessions_key(user.id)):
            raw = await self._broker.get(store.session_key(token_hash))
            if raw is None:
                await self._broker.remove_member(
                    store.user_sessions_key(user.id), token_hash
                )
                continue
            found.append(Session(token_hash=token_hash, **jsontext.loads(raw)))
        return sorted(found, key=lambda s: s.created_at, reverse=True)

    async def revoke_by_id(self, user: User, session_id: str) -> None:
        """End one of the user's sessions, named by its public id."""
        for session in await self.sessions(user):
            if session.public_id == session_id:
                await self._end(session.token_hash)
                self._audit.record(
                    "session_revoked", subject=user.username, user_id=user.id
                )
                return
        raise NotFound("No such session.", code="unknown_session")

    async def revoke_all(self, user: User, *, keep: str | None = None) -> int:
        """End every session and app token of the user but keep (a token hash)."""
        ended = 0
        for token_hash in await self._broker.members(store.user_sessions_key(user.id)):
            if token_hash != keep:
                await self._end(token_hash)
                ended += 1
        return ended
