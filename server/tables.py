"""The durable schema as SQLAlchemy Core tables; Alembic migrations mirror it."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(32), nullable=False, unique=True),
    sa.Column("phone", sa.String(20), nullable=True, unique=True),
    sa.Column("email", sa.String(254), nullable=True, unique=True),
    sa.Column("display_name", sa.String(64), nullable=False, server_default=""),
    sa.Column("avatar_url", sa.String(512), nullable=False, server_default=""),
    sa.Column("user_type", sa.String(16), nullable=False, server_default="individual"),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.Float, nullable=True),
    sa.Column("is_staff", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("unfinished_orders", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("user_type in ('individual', 'enterprise')", name="user_type"),
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("document", sa.String(32), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False, server_default=""),
)

identities = sa.Table(
    "identities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_user_id", sa.String(128), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("display_name", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("provider", "provider_user_id", name="uq_identities_provider_user"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("event", sa.String(64), nullable=False, index=True),
    sa.Column("subject", sa.String(128), nullable=False, server_default="", index=True),
    sa.Column("user_id", sa.Integer, nullable=True, index=True),
    sa.Column("ip", sa.String(64), nullable=False, server_default=""),
    sa.Column("user_agent", sa.String(512), nullable=False, server_default=""),
    sa.Column("data", sa.JSON, nullable=False),
)

ACTIVE = sa.text("ended_at IS NULL")

enterprise_bindings = sa.Table(
    "enterprise_bindings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("uscc", sa.String(18), nullable=False),
    sa.Column("enterprise_name", sa.String(128), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_by", sa.String(64), nullable=True),
    # One enterprise, one user; one user, one enterprise: only among live bindings.
    sa.Index("uq_bindings_live_uscc", "uscc", unique=True,
             postgresql_where=ACTIVE, sqlite_where=ACTIVE),
    sa.Index("uq_bindings_live_user", "user_id", unique=True,
             postgresql_where=ACTIVE, sqlite_where=ACTIVE),
)

unbind_requests = sa.Table(
    "unbind_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("requester_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("enterprise_name", sa.String(128), nullable=False),
    sa.Column("uscc", sa.String(18), nullable=False, index=True),
    sa.Column("bind_account", sa.String(64), nullable=False),
    sa.Column("bind_phone", sa.String(20), nullable=False),
    sa.Column("unbind_account", sa.String(64), nullable=True),
    sa.Column("unbind_phone", sa.String(20), nullable=True),
    sa.Column("note", sa.String(500), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("reviewer_id", sa.Integer, nullable=True),
    sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reject_reason", sa.String(500), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status in ('pending', 'approved', 'rejected')", name="status"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("body", sa.String(1000), nullable=False, server_default=""),
    sa.Column("link", sa.String(256), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_notifications_user_id_id", "user_id", "id"),
)
