"""Where a review's evidence came from: sent with it (`request`) or the stored answer's cited windows (`cited`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every review stored before this revision was sent with its evidence (it was required).
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("evidence_source", sa.String(16), nullable=False, server_default="request"))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("evidence_source")
