"""The database engine: opened in a cleanup context, migrated by Alembic."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the async engine for the configured URL; nothing connects yet."""
    url = settings.sqlalchemy_url
    if settings.uses_sqlite:
        if ":memory:" not in url:
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_timeout=10,
        # No pre-ping: it costs a round trip on every checkout; recycling old
        # connections and retrying at the edge cover a restarted server.
        pool_recycle=1800,
        connect_args={"timeout": 10, "command_timeout": 30},
    )


def _tune_sqlite(dbapi_connection: object, _record: object) -> None:
    """WAL lets readers run beside the writer; foreign keys are off by default."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations, with no ini file needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; a no-op when it is there already."""

    def run(connection: Connection) -> None:
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as conn:
        await conn.run_sync(run)
    log.info("database schema is at the newest revision")


async def engine_context(
    settings: Settings, *, migrate: bool
) -> AsyncIterator[AsyncEngine]:
    """Open the engine, migrate when asked, and dispose of it at shutdown."""
    engine = create_engine(settings)
    try:
        if migrate:
            await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
