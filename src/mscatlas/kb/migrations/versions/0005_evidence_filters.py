"""Evidence filtering, sorting and facet counts in SQL (issue 14): columns derived from each
item's JSON (evidence level, MSC sources, reference order, cell lines, search text) and indexes
on every filter column, and one covering index of the facet columns.

The new columns are added NOT NULL with a placeholder default (SQLite adds such a column
without rebuilding the table) and then filled from each stored item's data with
``mscatlas.kb.store.tables.evidence_derived``, the function the store uses when it writes an
item, so that a migrated store and a new one hold the same values.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mscatlas.kb.store.tables import FACET_INDEX_COLUMNS, evidence_derived

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NEW_COLUMNS = (
    sa.Column("evidence_level", sa.String(32), nullable=False, server_default=""),
    sa.Column("msc_sources", sa.String(255), nullable=False, server_default=""),
    sa.Column("ref_order", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("cell_lines", sa.Text(), nullable=False, server_default=""),
    sa.Column("search_text", sa.Text(), nullable=False, server_default=""),
)
INDEXED = (
    "cancer_class",
    "setting",
    "endpoint",
    "curation_status",
    "evidence_level",
    "msc_sources",
    "ref_order",
)


def upgrade() -> None:
    for column in NEW_COLUMNS:
        op.add_column("evidence", column)
    evidence = sa.table(
        "evidence",
        sa.column("id", sa.String()),
        sa.column("data", sa.JSON()),
        *(sa.column(c.name, c.type) for c in NEW_COLUMNS),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(evidence.c.id, evidence.c.data)).all()
    for record_id, data in rows:
        bind.execute(sa.update(evidence).where(evidence.c.id == record_id).values(**evidence_derived(data)))
    for name in INDEXED:
        op.create_index(f"ix_evidence_{name}", "evidence", [name])
    op.create_index("ix_evidence_facets", "evidence", list(FACET_INDEX_COLUMNS))


def downgrade() -> None:
    op.drop_index("ix_evidence_facets", "evidence")
    for name in INDEXED:
        op.drop_index(f"ix_evidence_{name}", "evidence")
    for column in NEW_COLUMNS:
        op.drop_column("evidence", column.name)
