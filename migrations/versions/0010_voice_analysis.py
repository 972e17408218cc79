"""voice profiles keep the offline voice's analysis of their reference audio

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 10:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('voice_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('analysis_media_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_voice_profiles_analysis_media_id_media_objects'), 'media_objects', ['analysis_media_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('voice_profiles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_voice_profiles_analysis_media_id_media_objects'), type_='foreignkey')
        batch_op.drop_column('analysis_media_id')
