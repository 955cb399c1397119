"""Catalog versions: the snapshot of every run-written table after a run's commits, as one row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archivist_catalog_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40)),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshots", sa.JSON(), nullable=False),
    )
    op.create_index("ix_catalog_versions_run", "archivist_catalog_versions", ["run_id"])


def downgrade() -> None:
    op.drop_table("archivist_catalog_versions")
