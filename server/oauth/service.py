"""The rules of third-party login: state bound to one browser, single use, PKCE,
and one account per provider account.

A login in progress lives in the broker under a hash of a value only the
browser's cookie holds, so a callback replayed in another browser finds nothing.
A provider account seen for the first time waits, also in the broker, until the
user links it to an account or registers one.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy.ext.asyncio import AsyncEngine

from server.auth.service import AuthService, User
from server.auth.sessions import hash_token
from server.broker import Broker
from server.errors import AppError
from server.keys import Clock
from server.logs import fingerprint
from server.oauth import store
from server.oauth.client import Profile, ProviderClient
from server.oauth.config import Provider
from server.oauth.errors import (
    IdentityTaken,
    LinkExpired,
    ProviderDenied,
    StateMismatch,
    StateMissing,
    UnknownProvider,
)
from server.settings import Settings

log = logging.getLogger(__name__)

# Seconds a registration or link may hold a provider account for itself.
CLAIM_TTL = 60.0


@dataclass(frozen=True, slots=True)
class Pending:
    """A provider account waiting to be linked; next_url is empty for the app."""

    provider: str
    provider_user_id: str
    nickname: str
    next_url: str
    expires_at: float


class OAuthService:
    """Starts and finishes provider logins and links provider accounts."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: Broker,
        auth: AuthService,
        client: ProviderClient,
        providers: dict[str, Provider],
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._auth = auth
        self._client = client
        self.providers = providers
        self._ttl = settings.oauth_state_ttl
        self._base_url = settings.base_url
        self._clock = clock

    def provider(self, name: str) -> Provider:
        """The configured provider called name, or UnknownProvider."""
        provider = self.providers.get(name)
        if provider is None:
            raise UnknownProvider()
        return provider

    def redirect_uri(self, name: str) -> str:
        """Where the provider sends the browser back; registered with the provider."""
        return f"{self._base_url}/oauth/{name}/callback"

    async def begin(self, name: str, *, next_url: str) -> tuple[str, str]:
        """Start a browser login: (binding for the cookie, provider URL to visit).

        The binding is the only handle on the stored state, verifier and next URL.
        """
        provider = self.provider(name)
        binding, state = generate_token(43), generate_token(32)
        verifier = generate_token(64) if provider.pkce else ""
        record = {
            "provider": name,
            "state": state,
            "verifier": verifier,
            "next": next_url,
        }
        await self._broker.put(
            store.flow_key(hash_token(binding)), json.dumps(record), self._ttl
        )

        params = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": self.redirect_uri(name),
            "state": state,
        }
        if provider.scope:
            params["scope"] = provider.scope
        if verifier:
            params["code_challenge"] = create_s256_code_challenge(verifier)
            params["code_challenge_method"] = "S256"
        joiner = "&" if "?" in provider.authorize_url else "?"
        log.info("oauth %s started, flow %s", name, fingerprint(binding))
        return binding, f"{provider.authorize_url}{joiner}{urlencode(params)}"

    async def finish(
        self,
        name: str,
        *,
        binding: str | None,
        state: str,
        code: str,
        error: str,
    ) -> tuple[Profile, str]:
        """Check the callback against this browser's flow: (profile, next URL).

        The flow is taken, so a callback works once; a wrong state ends it too.
        """
        provider = self.provider(name)
        if not binding or len(binding) > 128:
            raise StateMissing()
        raw = await self._broker.take(store.flow_key(hash_token(binding)))
        if raw is None:
            raise StateMissing()
        record = json.loads(raw)
        if record["provider"] != name or not hmac.compare_digest(
            record["state"].encode(), state.encode()
        ):
            log.warning(
                "oauth %s callback with a foreign state, flow %s",
                name,
                fingerprint(binding),
            )
            raise StateMismatch()

        # RFC 6749 names the refusal in error; WeChat sends back only the state.
        if error or not code:
            log.info("oauth %s declined at the provider: %s", name, error[:40] or "-")
            raise ProviderDenied()
        profile = await self._exchange(
            provider,
            code=code,
            redirect_uri=self.redirect_uri(name),
            verifier=record["verifier"] or None,
        )
        return profile, record["next"]

    async def sign_in_with_code(
        self, name: str, *, code: str, redirect_uri: str, verifier: str | None
    ) -> Profile:
        """The app's path: it ran the authorize step itself and brings the code."""
        provider = self.provider(name)
        return await self._exchange(
            provider, code=code, redirect_uri=redirect_uri, verifier=verifier
        )

    async def _exchange(
        self, provider: Provider, *, code: str, redirect_uri: str, verifier: str | None
    ) -> Profile:
        """Code to token to profile."""
        token = await self._client.exchange_code(
            provider, code=code, redirect_uri=redirect_uri, verifier=verifier
        )
        return await self._client.fetch_profile(provider, token)

    async def find_user(self, profile: Profile) -> User | None:
        """The account linked to the provider account, or None the first time."""
        async with self._engine.connect() as conn:
            user_id = await store.fetch_user_id(conn, profile.provider, profile.user_id)
        return await self._auth.get_user(user_id) if user_id is not None else None

    async def hold(self, profile: Profile, *, next_url: str) -> str:
        """Park a first-time provider account; returns the link token, once."""
        link_token: str = generate_token(43)
        pending = Pending(
            provider=profile.provider,
            provider_user_id=profile.user_id,
            nickname=profile.nickname,
            next_url=next_url,
            expires_at=self._clock() + self._ttl,
        )
        await self._put_pending(link_token, pending)
        return link_token

    async def pending(self, link_token: str | None) -> Pending:
        """The parked provider account, left in place; LinkExpired when gone."""
        if not link_token or len(link_token) > 128:
            raise LinkExpired()
        raw = await self._broker.get(store.pending_key(hash_token(link_token)))
        if raw is None:
            raise LinkExpired()
        return Pending(**json.loads(raw))

    async def link(self, link_token: str, user: User) -> Pending:
        """Link the parked provider account to user (who proved their password).

        Single use; IdentityTaken when the provider account got linked meanwhile.
        """
        pending = await self._take_pending(link_token)
        async with self._claim(pending):
            async with self._engine.begin() as conn:
                await store.insert_identity(
                    conn,
                    provider=pending.provider,
                    provider_user_id=pending.provider_user_id,
                    user_id=user.id,
                    display_name=pending.nickname,
                )
        return pending

    async def register(
        self,
        link_token: str,
        *,
        username: str,
        password: str,
        phone: str | None,
        consents: dict[str, str],
        ip: str,
    ) -> tuple[User, Pending]:
        """Create an account for the parked provider account and link the two.

        A rejected username or password puts the provider account back, so the
        user can fix the form without going through the provider again.
        """
        pending = await self._take_pending(link_token)
        async with self._claim(pending):
            async with self._engine.connect() as conn:
                taken = await store.fetch_user_id(
                    conn, pending.provider, pending.provider_user_id
                )
            if taken is not None:
                raise IdentityTaken()
            try:
                user = await self._auth.create_user(
                    username=username,
                    password=password,
                    phone=phone or None,
                    display_name=pending.nickname,
                    consents=consents,
                    ip=ip,
                )
            except AppError:
                await self._put_pending(link_token, pending)
                raise
            async with self._engine.begin() as conn:
                await store.insert_identity(
                    conn,
                    provider=pending.provider,
                    provider_user_id=pending.provider_user_id,
                    user_id=user.id,
                    display_name=pending.nickname,
                )
        return user, pending

    async def _put_pending(self, link_token: str, pending: Pending) -> None:
        """Store pending until its deadline."""
        ttl = max(1.0, pending.expires_at - self._clock())
        key = store.pending_key(hash_token(link_token))
        await self._broker.put(key, json.dumps(asdict(pending)), ttl)

    async def _take_pending(self, link_token: str | None) -> Pending:
        """Take the parked provider account so that only one request links it."""
        if not link_token or len(link_token) > 128:
            raise LinkExpired()
        raw = await self._broker.take(store.pending_key(hash_token(link_token)))
        if raw is None:
            raise LinkExpired()
        return Pending(**json.loads(raw))

    @asynccontextmanager
    async def _claim(self, pending: Pending) -> AsyncIterator[None]:
        """Hold the provider account while it is linked; IdentityTaken if held.

        Two browsers may both reach the link page for one provider account. The
        claim stops the second before it creates an account it could not link;
        the unique index on identities stays the last word if a claim ever lapses.
        """
        key = store.claim_key(pending.provider, pending.provider_user_id)
        if not await self._broker.put(key, "1", CLAIM_TTL, only_new=True):
            raise IdentityTaken("This provider account is being linked right now.")
        try:
            yield
        finally:
            await self._broker.delete(key)
