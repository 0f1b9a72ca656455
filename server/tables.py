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
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
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
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("display_name", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint(
        "provider", "provider_user_id", name="uq_identities_provider_user"
    ),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
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
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("uscc", sa.String(18), nullable=False),
    sa.Column("enterprise_name", sa.String(128), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_by", sa.String(64), nullable=True),
    # One enterprise, one user; one user, one enterprise: only among live bindings.
    sa.Index(
        "uq_bindings_live_uscc",
        "uscc",
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    ),
    sa.Index(
        "uq_bindings_live_user",
        "user_id",
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    ),
)

unbind_requests = sa.Table(
    "unbind_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "requester_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
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
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("body", sa.String(1000), nullable=False, server_default=""),
    sa.Column("link", sa.String(256), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_notifications_user_id_id", "user_id", "id"),
)

# The declaration zone (一体化申报平台): programs, staff pages, short links.

programs = sa.Table(
    "programs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("department", sa.String(64), nullable=False),
    sa.Column("summary", sa.String(1000), nullable=False, server_default=""),
    sa.Column("notice_html", sa.Text, nullable=False, server_default=""),
    sa.Column("entry_url", sa.String(512), nullable=False, server_default=""),
    sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status in ('draft', 'published', 'archived')", name="status"),
    sa.CheckConstraint("closes_at > opens_at", name="window"),
)

guides = sa.Table(
    "guides",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("body_html", sa.Text, nullable=False, server_default=""),
    sa.Column("short_code", sa.String(32), nullable=True),
    sa.Column("updated_by", sa.Integer, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

short_links = sa.Table(
    "short_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("target", sa.String(1024), nullable=False),
    sa.Column("hits", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_by", sa.Integer, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Declarations (申报书): owned by an enterprise (its USCC), not by the user who types.

declarations = sa.Table(
    "declarations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "program_id",
        sa.Integer,
        sa.ForeignKey("programs.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("uscc", sa.String(18), nullable=False, index=True),
    sa.Column("enterprise_name", sa.String(128), nullable=False),
    sa.Column(
        "created_by",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("project_name", sa.String(128), nullable=False, server_default=""),
    sa.Column("category", sa.String(32), nullable=False, server_default=""),
    sa.Column("total_investment", sa.BigInteger, nullable=True),
    sa.Column("amount_requested", sa.BigInteger, nullable=True),
    sa.Column("contact_name", sa.String(32), nullable=False, server_default=""),
    sa.Column("contact_phone", sa.String(20), nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
    sa.Column("review_comment", sa.String(1000), nullable=False, server_default=""),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(
        "status in ('draft', 'submitted', 'in_review', 'returned', 'approved', "
        "'rejected')",
        name="status",
    ),
    # One declaration per enterprise and program, even when two tabs race.
    sa.UniqueConstraint("program_id", "uscc", name="uq_declarations_program_uscc"),
)

declaration_events = sa.Table(
    "declaration_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "declaration_id",
        sa.Integer,
        sa.ForeignKey("declarations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.Integer, nullable=True),
    sa.Column("comment", sa.String(1000), nullable=False, server_default=""),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

declaration_attachments = sa.Table(
    "declaration_attachments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "declaration_id",
        sa.Integer,
        sa.ForeignKey("declarations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("filename", sa.String(128), nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("storage_key", sa.String(256), nullable=False),
    sa.Column("uploaded_by", sa.Integer, nullable=True),
    sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
)
