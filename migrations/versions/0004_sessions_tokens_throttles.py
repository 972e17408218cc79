"""session versions, token scopes, log-in throttles (instead of per-user lockout columns)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_throttles',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttles'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        # tokens made before scopes existed keep what the README promised them: generations
        batch_op.add_column(sa.Column('scopes', sa.JSON(), nullable=False, server_default='["generations"]'))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('scopes')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_column('session_version')
    op.drop_table('login_throttles')
