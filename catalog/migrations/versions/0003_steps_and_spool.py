"""One meaning per word: a run's timing rows are its steps, and results waiting for
their commit are in the spool (a "stage" is only ever a pipeline stage).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.rename_table("archivist_run_stages", "archivist_run_steps")
    with op.batch_alter_table("archivist_run_steps") as batch:
        batch.alter_column("stage", new_column_name="step", existing_type=sa.String(64))
    with op.batch_alter_table("archivist_asset_state") as batch:
        batch.alter_column("staged_uri", new_column_name="spool_uri", existing_type=sa.Text())
    op.execute("UPDATE archivist_asset_state SET status = 'spooled' WHERE status = 'staged'")


def downgrade() -> None:
    op.execute("UPDATE archivist_asset_state SET status = 'staged' WHERE status = 'spooled'")
    with op.batch_alter_table("archivist_asset_state") as batch:
        batch.alter_column("spool_uri", new_column_name="staged_uri", existing_type=sa.Text())
    with op.batch_alter_table("archivist_run_steps") as batch:
        batch.alter_column("step", new_column_name="stage", existing_type=sa.String(64))
    op.rename_table("archivist_run_steps", "archivist_run_stages")
