"""one schedule of periodic jobs shared by every server and worker

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('periodic_schedule',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('next_due_at', sa.DateTime(), nullable=False),
    sa.Column('last_enqueued_at', sa.DateTime(), nullable=True),
    sa.Column('last_job_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_periodic_schedule'))
    )


def downgrade() -> None:
    op.drop_table('periodic_schedule')
