"""One frozen settings object, read once at start-up from QRLOGIN_* variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-secret-do-not-use-in-production"


class Mode(StrEnum):
    """How strict the server is about its surroundings."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConfigError(Exception):
    """The settings cannot run the server; the message says which and why."""


class Settings(BaseSettings):
    """Every knob of the server. Each field's description is its line of help."""

    model_config = SettingsConfigDict(
        env_prefix="QRLOGIN_", frozen=True, extra="ignore", strict=False
    )

    mode: Mode = Field(Mode.DEVELOPMENT, description="development or production")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=0, le=65535, description="port to listen on")
    public_url: str = Field(
        "",
        description="URL users reach the server at (QR codes, Origin checks); "
        "empty means http://HOST:PORT",
    )
    allowed_origins: str = Field(
        "",
        description="extra comma-separated origins allowed for WebSockets and writes",
    )
    secret_key: SecretStr = Field(
        SecretStr(DEVELOPMENT_SECRET), description="key that signs tokens and tickets"
    )
    database_url: str = Field(
        "", description="postgresql://... for PostgreSQL; empty for SQLite under var/"
    )
    broker_url: str = Field(
        "", description="redis://... for Redis; empty for the in-process memory broker"
    )
    var_dir: Path = Field(Path("var"), description="folder for the SQLite file")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    forwarded_hops: int = Field(
        0, ge=0, description="trusted proxies in front; 0 ignores X-Forwarded-For"
    )

    qr_lifetime: float = Field(120.0, gt=0, description="seconds a new QR code lives")
    qr_step_lifetime: float = Field(
        60.0, gt=0, description="seconds left to confirm after a scan, and to redeem"
    )
    qr_max_rotations: int = Field(
        5, ge=0, description="automatic QR refreshes before the page shows expired"
    )
    session_ttl: float = Field(
        8 * 3600.0, gt=0, description="seconds a browser session lives"
    )
    app_token_ttl: float = Field(
        30 * 86400.0, gt=0, description="seconds an app bearer token lives"
    )
    user_cache_ttl: float = Field(
        60.0,
        gt=0,
        description="seconds a node may answer from its copy of a user "
        "(changes reach every node at once; this bounds a lost message)",
    )
    user_cache_size: int = Field(
        10_000, ge=0, description="users each process keeps in memory; 0 turns it off"
    )

    ws_auth_timeout: float = Field(
        5.0, gt=0, description="seconds a socket has to send its auth frame"
    )
    ws_heartbeat: float = Field(25.0, gt=0, description="WebSocket ping interval")
    ws_send_queue: int = Field(
        32, ge=1, description="frames queued per socket before it is dropped as slow"
    )
    ws_max_frame: int = Field(
        4096, ge=64, description="largest client frame, in bytes, that is parsed"
    )
    longpoll_max_wait: float = Field(
        30.0, gt=0, description="longest wait, in seconds, a long-poll may ask for"
    )

    limit_qr_create: str = Field(
        "60/minute", description="QR sessions one IP may create"
    )
    limit_app_login: str = Field("20/minute", description="logins tried from one IP")
    limit_scan: str = Field(
        "30/minute", description="scans, confirms and cancels by one user"
    )
    limit_redeem: str = Field("30/minute", description="ticket redeems from one IP")
    limit_longpoll: str = Field(
        "240/minute", description="long-poll requests from one IP"
    )

    lockout_threshold: int = Field(
        5, ge=1, description="wrong passwords in a row that lock an account"
    )
    lockout_seconds: float = Field(600.0, gt=0, description="how long a lock lasts")
    captcha_ttl: float = Field(
        120.0, gt=0, description="seconds a captcha can be solved"
    )
    code_ttl: float = Field(300.0, gt=0, description="seconds a one-time code is valid")
    code_max_tries: int = Field(
        5, ge=1, description="wrong tries before a code is void"
    )
    code_resend_after: float = Field(
        60.0, ge=0, description="seconds before a code can be sent again"
    )
    limit_code_hour: str = Field(
        "5/hour", description="codes sent to one phone or email"
    )
    limit_code_day: str = Field(
        "10/day", description="codes sent to one phone or email"
    )
    limit_code_ip: str = Field("30/hour", description="codes requested from one IP")
    sms_gateway_url: str = Field(
        "",
        description="HTTP SMS gateway (POST JSON); empty uses the development outbox",
    )
    sms_gateway_token: SecretStr = Field(
        SecretStr(""), description="bearer token for the SMS gateway"
    )
    smtp_host: str = Field(
        "", description="SMTP server; empty uses the development outbox"
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    smtp_username: str = Field("", description="SMTP user, if the server wants one")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password")
    smtp_starttls: bool = Field(True, description="upgrade SMTP with STARTTLS")
    smtp_sender: str = Field(
        "noreply@example.org", description="From address of the emails sent"
    )
    terms_version: str = Field("2026-01", description="version of the user agreement")
    privacy_version: str = Field("2026-01", description="version of the privacy policy")

    app_download_url: str = Field(
        "https://example.org/app/download",
        description="link in the app-download QR on the login page",
    )
    oauth_providers: SecretStr = Field(
        SecretStr(""),
        description="JSON object of third-party login providers (微信, 微博, QQ), "
        "see docs/oauth.md; empty offers none",
    )
    oauth_state_ttl: float = Field(
        600.0, gt=0, description="seconds a third-party login may take, start to link"
    )
    oauth_http_timeout: float = Field(
        10.0, gt=0, description="seconds each call to a login provider may take"
    )
    identity_issuer: str = Field(
        "",
        description="OpenID Connect issuer URL of 一证通 (北京市统一身份认证平台), "
        "see docs/identity.md; empty turns enterprise certification off",
    )
    identity_client_id: str = Field(
        "qrlogin-portal", description="client id the portal has at 一证通"
    )
    identity_client_secret: SecretStr = Field(
        SecretStr("standin-identity-secret"),
        description="client secret the portal has at 一证通; the default is the stand-in's",
    )
    identity_standin: bool = Field(
        False, description="the issuer is the 一证通 stand-in (refused in production)"
    )
    identity_http_timeout: float = Field(
        10.0, gt=0, description="seconds each call to 一证通 may take"
    )
    identity_cache_ttl: float = Field(
        3600.0,
        gt=0,
        description="seconds 一证通's discovery document and keys are cached",
    )

    attachment_dir: str = Field(
        "",
        description="folder for declaration attachments; empty means VAR_DIR/attachments",
    )
    attachment_max_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="largest declaration attachment, in bytes",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url_is_absolute(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @property
    def is_development(self) -> bool:
        """Whether the development conveniences (auto-migrate, plain cookies) apply."""
        return self.mode is Mode.DEVELOPMENT

    @property
    def base_url(self) -> str:
        """The public URL, or this process's own address when none is set."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def public_origin(self) -> str:
        """Scheme, host and port of the public URL."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def origins(self) -> frozenset[str]:
        """Every origin allowed to open sockets and send cookie-authenticated writes."""
        extra = {o.strip().rstrip("/") for o in self.allowed_origins.split(",")}
        return frozenset({self.public_origin} | {o for o in extra if o})

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the async driver named."""
        url = self.database_url
        if not url:
            return f"sqlite+aiosqlite:///{self.var_dir / 'qrlogin.db'}"
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url[len("sqlite://") :]
        return url

    @property
    def uses_sqlite(self) -> bool:
        """Whether the embedded database is in use."""
        return self.sqlalchemy_url.startswith("sqlite")

    def check_production(self) -> None:
        """Refuse the embedded backends and development secrets in production."""
        if self.is_development:
            return
        problems = []
        if self.uses_sqlite:
            problems.append("QRLOGIN_DATABASE_URL must name PostgreSQL, not SQLite")
        if not self.broker_url:
            problems.append("QRLOGIN_BROKER_URL must name Redis, not the memory broker")
        secret = self.secret_key.get_secret_value()
        if secret == DEVELOPMENT_SECRET or len(secret) < 32:
            problems.append(
                "QRLOGIN_SECRET_KEY must be set to 32 or more random characters"
            )
        if not self.base_url.startswith("https://"):
            problems.append("QRLOGIN_PUBLIC_URL must be https:// in production")
        if not self.sms_gateway_url or not self.smtp_host:
            problems.append(
                "QRLOGIN_SMS_GATEWAY_URL and QRLOGIN_SMTP_HOST must be set: the "
                "development outbox never runs in production"
            )
        from server.oauth.config import production_problems  # imports this module

        problems += production_problems(self.oauth_providers.get_secret_value())
        from server.certification.config import production_problems as identity

        problems += identity(self)
        if problems:
            raise ConfigError(
                "production mode refuses to start: " + "; ".join(problems)
            )


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; overrides win (tests use them)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as err:
        raise ConfigError(f"bad setting: {err}") from err
