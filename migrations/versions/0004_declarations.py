"""Declarations: programs, guides, short links, declarations and their history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATUSES = "'draft', 'submitted', 'in_review', 'returned', 'approved', 'rejected'"


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the zone's and the declarations' tables."""
    op.create_table(
        "programs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False, server_default=""),
        sa.Column("notice_html", sa.Text, nullable=False, server_default=""),
        sa.Column("entry_url", sa.String(512), nullable=False, server_default=""),
        _when("opens_at"),
        _when("closes_at"),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        _when("created_at"),
        _when("updated_at"),
        sa.CheckConstraint(
            "status in ('draft', 'published', 'archived')", name="ck_programs_status"
        ),
        sa.CheckConstraint("closes_at > opens_at", name="ck_programs_window"),
    )
    op.create_table(
        "guides",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("body_html", sa.Text, nullable=False, server_default=""),
        sa.Column("short_code", sa.String(32), nullable=True),
        sa.Column("updated_by", sa.Integer, nullable=True),
        _when("updated_at"),
        sa.UniqueConstraint("slug", name="uq_guides_slug"),
    )
    op.create_table(
        "short_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("target", sa.String(1024), nullable=False),
        sa.Column("hits", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_by", sa.Integer, nullable=True),
        _when("created_at"),
        sa.UniqueConstraint("code", name="uq_short_links_code"),
    )
    op.create_table(
        "declarations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "program_id",
            sa.Integer,
            sa.ForeignKey(
                "programs.id",
                ondelete="RESTRICT",
                name="fk_declarations_program_id_programs",
            ),
            nullable=False,
        ),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("enterprise_name", sa.String(128), nullable=False),
        sa.Column(
            "created_by",
            sa.Integer,
            sa.ForeignKey(
                "users.id", ondelete="SET NULL", name="fk_declarations_created_by_users"
            ),
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
        _when("submitted_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.CheckConstraint(f"status in ({STATUSES})", name="ck_declarations_status"),
        sa.UniqueConstraint("program_id", "uscc", name="uq_declarations_program_uscc"),
    )
    op.create_index("ix_declarations_program_id", "declarations", ["program_id"])
    op.create_index("ix_declarations_uscc", "declarations", ["uscc"])
    op.create_table(
        "declaration_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "declaration_id",
            sa.Integer,
            sa.ForeignKey(
                "declarations.id",
                ondelete="CASCADE",
                name="fk_declaration_events_declaration_id_declarations",
            ),
            nullable=False,
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer, nullable=True),
        sa.Column("comment", sa.String(1000), nullable=False, server_default=""),
        _when("at"),
    )
    op.create_index(
        "ix_declaration_events_declaration_id", "declaration_events", ["declaration_id"]
    )
    op.create_table(
        "declaration_attachments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "declaration_id",
            sa.Integer,
            sa.ForeignKey(
                "declarations.id",
                ondelete="CASCADE",
                name="fk_declaration_attachments_declaration_id_declarations",
            ),
            nullable=False,
        ),
        sa.Column("filename", sa.String(128), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(256), nullable=False),
        sa.Column("uploaded_by", sa.Integer, nullable=True),
        _when("uploaded_at"),
    )
    op.create_index(
        "ix_declaration_attachments_declaration_id",
        "declaration_attachments",
        ["declaration_id"],
    )


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("declaration_attachments")
    op.drop_table("declaration_events")
    op.drop_table("declarations")
    op.drop_table("short_links")
    op.drop_table("guides")
    op.drop_table("programs")
