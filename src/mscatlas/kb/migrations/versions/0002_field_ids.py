"""Studies outside the review (no reference number) and trial ids of other registries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("study") as batch:
        batch.alter_column("ref", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("trial") as batch:
        batch.alter_column("nct_id", existing_type=sa.String(16), type_=sa.String(40))


def downgrade() -> None:
    with op.batch_alter_table("trial") as batch:
        batch.alter_column("nct_id", existing_type=sa.String(40), type_=sa.String(16))
    with op.batch_alter_table("study") as batch:
        batch.alter_column("ref", existing_type=sa.Integer(), nullable=False)
