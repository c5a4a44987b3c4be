"""Team edits survive new releases (shipped versions, proposals); server-side web sessions and
login throttling.

The shipped version of each record of an existing store is the data of its latest revision
by the seeding account ``mscatlas-seed`` (mscatlas 0.1.0 seeded that way).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    shipped = op.create_table(
        "shipped_record",
        sa.Column("record_kind", sa.String(16), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_table(
        "proposal",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_kind", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_proposal_record_id", "proposal", ["record_id"])
    op.create_index("ix_proposal_status", "proposal", ["status"])
    op.create_table(
        "web_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(64), sa.ForeignKey("user.name", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_session_user_name", "web_session", ["user_name"])
    op.create_table(
        "login_failure",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    )
    _backfill_shipped(shipped)


def _backfill_shipped(shipped: sa.Table) -> None:
    revision_table = sa.table(
        "revision",
        sa.column("id", sa.Integer()),
        sa.column("record_kind", sa.String()),
        sa.column("record_id", sa.String()),
        sa.column("data", sa.JSON()),
        sa.column("changed_by", sa.String()),
    )
    bind = op.get_bind()
    latest = (
        sa.select(sa.func.max(revision_table.c.id))
        .where(revision_table.c.changed_by == "mscatlas-seed")
        .group_by(revision_table.c.record_kind, revision_table.c.record_id)
    )
    rows = bind.execute(
        sa.select(revision_table.c.record_kind, revision_table.c.record_id, revision_table.c.data).where(
            revision_table.c.id.in_(latest)
        )
    ).all()
    values = [
        {
            "record_kind": kind,
            "record_id": record_id,
            "data": data,
            "content_hash": hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest(),
        }
        for kind, record_id, data in rows
        if data is not None
    ]
    if values:
        op.bulk_insert(shipped, values)


def downgrade() -> None:
    for table in ("login_failure", "web_session", "proposal", "shipped_record"):
        op.drop_table(table)
