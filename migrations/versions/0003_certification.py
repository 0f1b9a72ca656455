"""Certification: enterprise bindings, unbind requests, staff, notifications.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ACTIVE = sa.text("ended_at IS NULL")


def upgrade() -> None:
    """Add staff and order columns, and the certification and notification tables."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("is_staff", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column(
                "unfinished_orders", sa.Integer, nullable=False, server_default="0"
            )
        )
    op.create_table(
        "enterprise_bindings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey(
                "users.id",
                ondelete="CASCADE",
                name="fk_enterprise_bindings_user_id_users",
            ),
            nullable=False,
        ),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("enterprise_name", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(64), nullable=True),
    )
    op.create_index(
        "uq_bindings_live_uscc",
        "enterprise_bindings",
        ["uscc"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_index(
        "uq_bindings_live_user",
        "enterprise_bindings",
        ["user_id"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_table(
        "unbind_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "requester_id",
            sa.Integer,
            sa.ForeignKey(
                "users.id",
                ondelete="CASCADE",
                name="fk_unbind_requests_requester_id_users",
            ),
            nullable=False,
        ),
        sa.Column("enterprise_name", sa.String(128), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
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
        sa.CheckConstraint(
            "status in ('pending', 'approved', 'rejected')",
            name="ck_unbind_requests_status",
        ),
    )
    op.create_index(
        "ix_unbind_requests_requester_id", "unbind_requests", ["requester_id"]
    )
    op.create_index("ix_unbind_requests_uscc", "unbind_requests", ["uscc"])
    op.create_table(
        "notifications",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
        ),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey(
                "users.id", ondelete="CASCADE", name="fk_notifications_user_id_users"
            ),
            nullable=False,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("body", sa.String(1000), nullable=False, server_default=""),
        sa.Column("link", sa.String(256), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_notifications_user_id_id", "notifications", ["user_id", "id"])


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("notifications")
    op.drop_table("unbind_requests")
    op.drop_table("enterprise_bindings")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("unfinished_orders")
        batch.drop_column("is_staff")
