"""SQL for linked identities and the broker keys of logins in progress."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.oauth.errors import IdentityTaken
from server.tables import identities


def flow_key(binding_hash: str) -> str:
    """A browser's login in progress: state, verifier and next URL."""
    return f"oauth:flow:{binding_hash}"


def pending_key(link_hash: str) -> str:
    """A provider account waiting to be linked or registered."""
    return f"oauth:pending:{link_hash}"


def claim_key(provider: str, provider_user_id: str) -> str:
    """Held while an account is registered for one provider account."""
    return f"oauth:claim:{provider}:{provider_user_id}"


async def fetch_user_id(
    conn: AsyncConnection, provider: str, provider_user_id: str
) -> int | None:
    """The user linked to a provider account, or None."""
    query = sa.select(identities.c.user_id).where(
        identities.c.provider == provider,
        identities.c.provider_user_id == provider_user_id,
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def insert_identity(
    conn: AsyncConnection,
    *,
    provider: str,
    provider_user_id: str,
    user_id: int,
    display_name: str,
) -> None:
    """Link a provider account; the unique index makes a second link IdentityTaken."""
    values = {
        "provider": provider,
        "provider_user_id": provider_user_id,
        "user_id": user_id,
        "display_name": display_name[:64],
        "created_at": dt.datetime.now(dt.UTC),
    }
    try:
        await conn.execute(identities.insert().values(**values))
    except IntegrityError as err:
        raise IdentityTaken() from err
