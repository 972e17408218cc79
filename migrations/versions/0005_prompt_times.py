"""liveness sessions keep when the page showed each prompt

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 08:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('liveness_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prompt_times', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('liveness_sessions', schema=None) as batch_op:
        batch_op.drop_column('prompt_times')
