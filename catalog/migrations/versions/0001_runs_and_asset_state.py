"""Runs, their stages, asset state per pipeline version, and file fingerprints.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archivist_runs",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("job", sa.String(200), nullable=False, index=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("pipeline_version", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("summary", sa.JSON()),
    )
    op.create_table(
        "archivist_run_stages",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("archivist_runs.run_id"), primary_key=True),
        sa.Column("stage", sa.String(64), primary_key=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
    )
    op.create_table(
        "archivist_asset_state",
        sa.Column("asset_id", sa.String(64), primary_key=True),
        sa.Column("pipeline_version", sa.String(64), primary_key=True),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("staged_uri", sa.Text()),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "archivist_fingerprints",
        sa.Column("uri", sa.Text(), primary_key=True),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("asset_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archivist_fingerprints")
    op.drop_table("archivist_asset_state")
    op.drop_table("archivist_run_stages")
    op.drop_table("archivist_runs")
