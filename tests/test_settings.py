"""Settings: strict, documented, masked, and strict in production."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.settings import ConfigError, Settings, load_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_has_help_and_is_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert f"QRLOGIN_{name.upper()}" in readme, (
            f"QRLOGIN_{name.upper()} is not documented"
        )


def test_readme_documents_no_setting_that_does_not_exist() -> None:
    readme = README.read_text(encoding="utf-8")
    known = {f"QRLOGIN_{name.upper()}" for name in Settings.model_fields}
    known |= {
        "QRLOGIN_NEW_PASSWORD",
        "QRLOGIN_TEST_PG_ADMIN",
        "QRLOGIN_TEST_PG_DB",
        "QRLOGIN_TEST_REDIS",
    }
    # A name ending in "_" is a prefix in a shell loop (QRLOGIN_LIMIT_$l), not a setting.
    mentioned = {
        name for name in re.findall(r"QRLOGIN_[A-Z0-9_]+", readme) if not name.endswith("_")
    }
    assert mentioned <= known, mentioned - known


def test_secret_is_masked_when_printed() -> None:
    settings = load_settings(secret_key="s" * 40)
    assert "s" * 40 not in repr(settings) and "s" * 40 not in str(settings)


def test_environment_is_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QRLOGIN_QR_LIFETIME", "30")
    monkeypatch.setenv("QRLOGIN_PORT", "9001")
    settings = load_settings()
    assert settings.qr_lifetime == 30 and settings.port == 9001
    assert settings.base_url == "http://127.0.0.1:9001"


def test_bad_values_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QRLOGIN_PORT", "eighty")
    with pytest.raises(ConfigError, match="port"):
        load_settings()
    monkeypatch.delenv("QRLOGIN_PORT")
    with pytest.raises(ConfigError, match="public_url"):
        load_settings(public_url="ftp://x")


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError):
        settings.port = 1  # type: ignore[misc]


def test_production_refuses_development_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(mode="production").check_production()
    message = str(caught.value)
    assert (
        "SQLite" in message and "memory broker" in message and "SECRET_KEY" in message
    )
    assert "outbox" in message

    good = load_settings(
        mode="production",
        database_url="postgresql://db/app",
        broker_url="redis://cache:6379/0",
        secret_key="k" * 48,
        public_url="https://login.example.org",
        sms_gateway_url="https://sms.example.org/send",
        smtp_host="smtp.example.org",
    )
    good.check_production()
    assert good.sqlalchemy_url == "postgresql+asyncpg://db/app"
    assert good.origins == frozenset({"https://login.example.org"})


def test_development_secret_is_refused_in_production() -> None:
    from server.settings import DEVELOPMENT_SECRET

    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings(
            mode="production",
            database_url="postgresql://db/app",
            broker_url="redis://cache",
            secret_key=DEVELOPMENT_SECRET,
            public_url="https://login.example.org",
        ).check_production()
