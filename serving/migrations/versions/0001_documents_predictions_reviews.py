"""Documents, the predictions made on them, and reviewers' corrections.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
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
        "documents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("source", sa.String(200)),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("split", sa.String(8)),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("party", sa.String(100), nullable=False),
        sa.Column("issue", sa.String(100), nullable=False),
        sa.Column("stance", sa.String(16), nullable=False),
        sa.Column("sentiment", sa.String(16), nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
        sa.Column("model_name", sa.String(200)),
        sa.Column("model_version", sa.String(200)),
        sa.Column("predicted_stance", sa.String(16)),
        sa.Column("predicted_sentiment", sa.String(16)),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    )


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_table("predictions")
    op.drop_table("documents")
