"""The schema of mscatlas 0.1.0 (the tables its create_all made).

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "study",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("ref", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_study_ref", "study", ["ref"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("study_id", sa.String(64), sa.ForeignKey("study.id"), nullable=False),
        sa.Column("msc_species", sa.String(16), nullable=False),
        sa.Column("cancer_type", sa.String(128), nullable=False),
        sa.Column("cancer_class", sa.String(16), nullable=False),
        sa.Column("delivery", sa.String(32), nullable=False),
        sa.Column("setting", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("curation_status", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    for column in ("study_id", "cancer_type", "delivery", "direction"):
        op.create_index(f"ix_evidence_{column}", "evidence", [column])
    op.create_table(
        "evidence_source",
        sa.Column("evidence_id", sa.String(64), sa.ForeignKey("evidence.id"), primary_key=True),
        sa.Column("source", sa.String(32), primary_key=True),
    )
    op.create_index("ix_evidence_source_source", "evidence_source", ["source"])
    op.create_table(
        "trial",
        sa.Column("nct_id", sa.String(16), primary_key=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "revision",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_kind", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_revision_record_id", "revision", ["record_id"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "user",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("user", "meta", "revision", "trial", "evidence_source", "evidence", "study"):
        op.drop_table(table)
