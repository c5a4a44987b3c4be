"""Text search at 10^5 items (issue 14 point 2), on SQLite: a covering index of each item's
search text, so that a search reads that narrow index, not the wide rows that carry each item's
JSON (~1.6 kB of a ~2.3 kB row). The text filter reads it through a subquery on the id.

PostgreSQL keeps large values out of line (TOAST), so its rows are already narrow; a B-tree there
would also refuse an entry over ~2.7 kB. The index is made on SQLite only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_evidence_text", "evidence", ["search_text", "id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_evidence_text", "evidence")
