"""Where the unified identity provider is and who the portal is there, from settings.

The QRLOGIN_IDENTITY_* settings are plain fields; this module turns them into one
checked object and says why they cannot run in production. It imports nothing
heavy, so the settings check can call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr

from server.settings import ConfigError, Settings


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """The relying party's view of the provider; an empty issuer turns it off."""

    issuer: str
    client_id: str
    client_secret: SecretStr
    standin: bool
    timeout: float
    cache_ttl: float

    @property
    def enabled(self) -> bool:
        """Whether enterprise certification is offered at all."""
        return bool(self.issuer)

    @property
    def discovery_url(self) -> str:
        """OpenID Connect Discovery 1.0, section 4: issuer + the well-known path."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def issuer_problem(issuer: str) -> str | None:
    """Why issuer is not a usable issuer URL, or None (empty is allowed: off)."""
    if not issuer:
        return None
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "QRLOGIN_IDENTITY_ISSUER must be an absolute http(s) URL"
    if parts.query or parts.fragment or parts.username or parts.password:
        return "QRLOGIN_IDENTITY_ISSUER must have no query, fragment or user name"
    return None


def load_config(settings: Settings) -> IdentityConfig:
    """The checked configuration; a ConfigError says what is wrong."""
    problem = issuer_problem(settings.identity_issuer)
    if problem:
        raise ConfigError(problem)
    if settings.identity_issuer and not settings.identity_client_id:
        raise ConfigError("QRLOGIN_IDENTITY_CLIENT_ID must be set with the issuer")
    return IdentityConfig(
        issuer=settings.identity_issuer,
        client_id=settings.identity_client_id,
        client_secret=settings.identity_client_secret,
        standin=settings.identity_standin,
        timeout=settings.identity_http_timeout,
        cache_ttl=settings.identity_cache_ttl,
    )


def development_client_secret() -> str:
    """The client secret the settings ship with: the stand-in's, known to all."""
    default = Settings.model_fields["identity_client_secret"].default
    return str(default.get_secret_value())


def production_problems(settings: Settings) -> list[str]:
    """Why the identity settings cannot run in production; empty when they can.

    The stand-in lets anyone register any enterprise, so certifying against it
    proves nothing; plain http would expose codes and tokens on the way.
    """
    issuer = settings.identity_issuer
    if not issuer:
        return []
    problems = []
    problem = issuer_problem(issuer)
    if problem:
        problems.append(problem)
    elif not issuer.startswith("https://"):
        problems.append("QRLOGIN_IDENTITY_ISSUER must be https:// in production")
    if settings.identity_standin:
        problems.append(
            "QRLOGIN_IDENTITY_STANDIN is on: the 一证通 stand-in never runs in "
            "production"
        )
    secret = settings.identity_client_secret.get_secret_value()
    if not secret or secret == development_client_secret():
        problems.append(
            "QRLOGIN_IDENTITY_CLIENT_SECRET must be the secret 一证通 issued, "
            "not the stand-in's"
        )
    return problems
