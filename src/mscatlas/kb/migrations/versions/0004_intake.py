"""Living intake (issue 10): searches, candidates, every record a search returned (with the
duplicate it matched and why), and screening decisions. The tables are declared in
``mscatlas.intake.tables`` on the store's declarative base.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_search",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("file", sa.Text(), nullable=True),
        sa.Column("format", sa.String(16), nullable=True),
        sa.Column("batch", sa.String(64), nullable=True),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_by", sa.String(64), nullable=False),
        sa.Column("returned", sa.Integer(), nullable=False),
    )
    op.create_table(
        "intake_candidate",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("pmid", sa.String(16), nullable=True),
        sa.Column("pmcid", sa.String(16), nullable=True),
        sa.Column("doi", sa.String(255), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("abstract", sa.Text(), nullable=True),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("journal", sa.Text(), nullable=True),
        sa.Column("publication_types", sa.JSON(), nullable=False),
        sa.Column("retracted", sa.Boolean(), nullable=False),
        sa.Column("search_id", sa.String(64), sa.ForeignKey("intake_search.id"), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("study_id", sa.String(64), nullable=True),
    )
    for column in ("pmid", "pmcid", "doi", "year", "search_id", "study_id"):
        op.create_index(f"ix_intake_candidate_{column}", "intake_candidate", [column])
    op.create_table(
        "intake_hit",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("search_id", sa.String(64), sa.ForeignKey("intake_search.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("candidate_pk", sa.Integer(), sa.ForeignKey("intake_candidate.pk"), nullable=True),
        sa.Column("study_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(8), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
    )
    op.create_index("ix_intake_hit_search_id", "intake_hit", ["search_id"])
    op.create_index("ix_intake_hit_candidate_pk", "intake_hit", ["candidate_pk"])
    op.create_table(
        "intake_decision",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("candidate_pk", sa.Integer(), sa.ForeignKey("intake_candidate.pk"), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolves", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_intake_decision_candidate_pk", "intake_decision", ["candidate_pk"])


def downgrade() -> None:
    op.drop_index("ix_intake_decision_candidate_pk", "intake_decision")
    op.drop_table("intake_decision")
    op.drop_index("ix_intake_hit_candidate_pk", "intake_hit")
    op.drop_index("ix_intake_hit_search_id", "intake_hit")
    op.drop_table("intake_hit")
    for column in ("pmid", "pmcid", "doi", "year", "search_id", "study_id"):
        op.drop_index(f"ix_intake_candidate_{column}", "intake_candidate")
    op.drop_table("intake_candidate")
    op.drop_table("intake_search")
