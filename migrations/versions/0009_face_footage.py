"""face profiles keep footage of the person speaking (the example-based talking head)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 18:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('face_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('footage_media_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_face_profiles_footage_media_id_media_objects'), 'media_objects', ['footage_media_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('face_profiles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_face_profiles_footage_media_id_media_objects'), type_='foreignkey')
        batch_op.drop_column('footage_media_id')
