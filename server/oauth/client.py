"""The server's side of talking to a provider: trade a code, read who it is.

Speaks the plain OAuth 2.0 shape (RFC 6749 token request with client_secret_post,
RFC 7636 verifier, a Bearer userinfo call answering {id, nickname}). Every call
has a timeout, every reply is size-capped, and every failure becomes one of the
provider errors.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from server.http import read_capped
from server.oauth.config import Provider
from server.oauth.errors import ProviderBadReply, ProviderRejected, ProviderUnavailable

log = logging.getLogger(__name__)

MAX_REPLY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Profile:
    """Who the provider says the user is."""

    provider: str
    user_id: str
    nickname: str


class ProviderClient:
    """Calls to the providers' token and userinfo endpoints."""

    def __init__(self, http: aiohttp.ClientSession, *, timeout: float) -> None:
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def exchange_code(
        self, provider: Provider, *, code: str, redirect_uri: str, verifier: str | None
    ) -> str:
        """Trade an authorization code for an access token; codes are single use."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret.get_secret_value(),
        }
        if verifier:
            form["code_verifier"] = verifier
        status, body = await self._call(provider, "POST", provider.token_url, data=form)
        if status in (400, 401, 403):
            # Only the RFC error code is logged: descriptions may echo the request.
            log.warning(
                "%s refused the code: %s",
                provider.name,
                str(body.get("error", "?"))[:40],
            )
            raise ProviderRejected()
        token = body.get("access_token") if status == 200 else None
        if not isinstance(token, str) or not token:
            log.warning(
                "%s token endpoint answered %d without a token", provider.name, status
            )
            raise ProviderBadReply()
        return token

    async def fetch_profile(self, provider: Provider, access_token: str) -> Profile:
        """The provider's id and nickname for the user behind access_token."""
        headers = {"Authorization": f"Bearer {access_token}"}
        status, body = await self._call(
            provider, "GET", provider.userinfo_url, headers=headers
        )
        if status in (401, 403):
            log.warning("%s refused its own access token", provider.name)
            raise ProviderRejected()
        user_id = body.get("id") if status == 200 else None
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if not isinstance(user_id, str) or not 1 <= len(user_id) <= 128:
            log.warning("%s userinfo answered %d without an id", provider.name, status)
            raise ProviderBadReply()
        nickname = body.get("nickname")
        nickname = nickname[:64] if isinstance(nickname, str) else ""
        return Profile(provider=provider.name, user_id=user_id, nickname=nickname)

    async def _call(
        self, provider: Provider, method: str, url: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        """One request: (status, JSON object); unreachable or 5xx is Unavailable."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        try:
            async with self._http.request(
                method,
                url,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                **kwargs,
            ) as response:
                status = response.status
                raw = await read_capped(response, MAX_REPLY)
        except (aiohttp.ClientError, TimeoutError) as err:
            log.error(
                "%s unreachable at %s: %s",
                provider.name,
                url.split("?")[0],
                type(err).__name__,
            )
            raise ProviderUnavailable() from err
        if status >= 500:
            log.error("%s answered %d at %s", provider.name, status, url.split("?")[0])
            raise ProviderUnavailable()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning("%s answered %d with no JSON object", provider.name, status)
            raise ProviderBadReply()
        return status, body
