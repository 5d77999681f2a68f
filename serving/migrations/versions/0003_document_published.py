"""When a document was published: given with it (`given`), or the time it was received (`received`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No document stored before this revision was sent with a date: its received time stands in, marked so.
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("published", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("published_source", sa.String(8), nullable=False, server_default="received"))
    op.execute("UPDATE documents SET published = received_at")
    with op.batch_alter_table("documents") as batch:
        batch.alter_column("published", existing_type=sa.DateTime, nullable=False)
        batch.create_index("ix_documents_published", ["published"])


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_published")
        batch.drop_column("published_source")
        batch.drop_column("published")
