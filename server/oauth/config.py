"""The providers third-party login may use, read from QRLOGIN_OAUTH_PROVIDERS.

The setting is one JSON object so a deployment names exactly the providers it has
contracts with; only those show on the login pages.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from server.settings import ConfigError, Settings

PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_]{1,31}")
RESERVED = frozenset({"link", "register"})

# Labels the login pages use when the configuration gives none.
LABELS = {"wechat": "微信", "weibo": "微博", "qq": "QQ"}


class Provider(BaseModel):
    """One provider: where its endpoints are and what the server is called there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    label: str = Field("", max_length=16)
    authorize_url: str
    token_url: str
    userinfo_url: str
    client_id: str = Field(min_length=1, max_length=128)
    client_secret: SecretStr
    scope: str = Field("", max_length=256)
    pkce: bool = False
    standin: bool = False

    @property
    def urls(self) -> tuple[str, str, str]:
        """The three endpoints, in the order the flow uses them."""
        return self.authorize_url, self.token_url, self.userinfo_url


def _is_web_url(url: str) -> bool:
    """Whether url is an absolute http(s) URL."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _describe(err: ValidationError) -> str:
    """Field paths and messages only: input values may hold a client secret."""
    return ", ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
    )


def parse_providers(raw: str) -> dict[str, Provider]:
    """Parse the setting's JSON; a ConfigError names the bad provider and field.

    An empty string means no third-party login at all.
    """
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise ConfigError("QRLOGIN_OAUTH_PROVIDERS is not valid JSON") from err
    if not isinstance(data, dict):
        raise ConfigError("QRLOGIN_OAUTH_PROVIDERS must be a JSON object of providers")

    providers = {}
    for name, entry in data.items():
        if not PROVIDER_NAME.fullmatch(name) or name in RESERVED:
            raise ConfigError(
                f"QRLOGIN_OAUTH_PROVIDERS: bad provider name {name[:32]!r}"
            )
        if not isinstance(entry, dict):
            raise ConfigError(f"QRLOGIN_OAUTH_PROVIDERS: {name} must be an object")
        try:
            provider = Provider.model_validate({**entry, "name": name})
        except ValidationError as err:
            problem = f"QRLOGIN_OAUTH_PROVIDERS: {name}: {_describe(err)}"
            raise ConfigError(problem) from err
        if not all(_is_web_url(url) for url in provider.urls):
            raise ConfigError(f"QRLOGIN_OAUTH_PROVIDERS: {name}: URLs must be http(s)")
        if not provider.label:
            provider = provider.model_copy(update={"label": LABELS.get(name, name)})
        providers[name] = provider
    return providers


def load_providers(settings: Settings) -> dict[str, Provider]:
    """The configured providers, in the order the setting lists them."""
    return parse_providers(settings.oauth_providers.get_secret_value())


def production_problems(raw: str) -> list[str]:
    """Why the providers setting cannot run in production; empty when it can.

    Stand-in providers hand out identities to anyone who clicks 同意, and plain
    http lets the provider's tokens be read on the way.
    """
    try:
        providers = parse_providers(raw)
    except ConfigError as err:
        return [str(err)]
    problems = []
    standins = sorted(name for name, p in providers.items() if p.standin)
    if standins:
        problems.append(
            "QRLOGIN_OAUTH_PROVIDERS names stand-in providers "
            f"({', '.join(standins)}): stand-ins never run in production"
        )
    plain = sorted(
        name
        for name, p in providers.items()
        if not all(url.startswith("https://") for url in p.urls)
    )
    if plain:
        problems.append(
            f"QRLOGIN_OAUTH_PROVIDERS URLs must be https:// ({', '.join(plain)})"
        )
    return problems
