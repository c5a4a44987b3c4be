"""Evidence pages at 10^5 items (issue 14 point 2): one covering index for every filter, sort
and page key, in place of the single-column indexes.

With single-column indexes the planner picked, say, ``ix_evidence_cancer_class`` for a filter,
then read each matching row of the wide table (every row carries its item's JSON, ~1.6 kB) to
test the other filters and fetch its content hash: ~10^4 wide-row reads for one page. The
covering index holds every column a filter, a sort, a count, a facet count or a page key reads
(JSON and search text aside), so those queries read only the index. ``curation_status`` leads,
so the review queue and accepted-only reads seek instead of scanning. ``study_id`` keeps its own
index (a study's items are looked up by it). The column lists are written out here, not imported,
so that this migration stays what it was when the code moves on.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCAN_COLUMNS = [
    "curation_status",
    "cancer_class",
    "delivery",
    "setting",
    "direction",
    "endpoint",
    "evidence_level",
    "cancer_type",
    "study_id",
    "msc_sources",
    "ref_order",
    "cell_lines",
    "id",
    "content_hash",
]
DROPPED = [  # single-column indexes of 0001 and 0005 that the scan index replaces
    "cancer_type",
    "delivery",
    "direction",
    "cancer_class",
    "setting",
    "endpoint",
    "curation_status",
    "evidence_level",
    "msc_sources",
    "ref_order",
]
FACETS_0005 = [
    "cancer_class",
    "cancer_type",
    "delivery",
    "setting",
    "direction",
    "endpoint",
    "study_id",
    "curation_status",
    "evidence_level",
    "id",
]


def upgrade() -> None:
    op.drop_index("ix_evidence_facets", "evidence")
    for name in DROPPED:
        op.drop_index(f"ix_evidence_{name}", "evidence")
    op.create_index("ix_evidence_scan", "evidence", SCAN_COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_evidence_scan", "evidence")
    for name in DROPPED:
        op.create_index(f"ix_evidence_{name}", "evidence", [name])
    op.create_index("ix_evidence_facets", "evidence", FACETS_0005)
