"""A run's steps keep the order they were recorded in: `position`, 1 for a run's first step.

Steps recorded before this revision get their order back where the database kept it
(SQLite's rowid is the order rows were inserted in; a re-recorded step keeps its row);
elsewhere nothing kept it, and they are numbered by name.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STEPS = "archivist_run_steps"


def upgrade() -> None:
    with op.batch_alter_table(STEPS) as batch:
        batch.add_column(sa.Column("position", sa.Integer(), nullable=True))
    earlier = "o.rowid <= {t}.rowid" if op.get_bind().dialect.name == "sqlite" else "o.step <= {t}.step"
    op.execute(
        f"UPDATE {STEPS} SET position = (SELECT count(*) FROM {STEPS} AS o "
        f"WHERE o.run_id = {STEPS}.run_id AND {earlier.format(t=STEPS)})"
    )
    with op.batch_alter_table(STEPS) as batch:
        batch.alter_column("position", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table(STEPS) as batch:
        batch.drop_column("position")
