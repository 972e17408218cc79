"""Migrations build the schema the models declare, on SQLite and on PostgreSQL."""
from datetime import timedelta

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from avatar.store.db import Base, Database, utcnow
from avatar.store.migrate import current, downgrade, upgrade
from avatar.store.models import (
    AuditEvent,
    Consent,
    Enrollment,
    FaceProfile,
    Generation,
    IdempotencyKey,
    Job,
    LivenessSession,
    MediaObject,
    Review,
    SubjectKey,
    User,
    VoiceProfile,
)


def test_upgrade_matches_models_and_downgrades(any_db_url):
    upgrade(any_db_url)
    assert current(any_db_url) is not None
    engine = sa.create_engine(any_db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
    downgrade(any_db_url, "base")
    engine = sa.create_engine(any_db_url)
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_every_model_round_trips(any_db_url):
    upgrade(any_db_url)
    db = Database(any_db_url)
    now = utcnow()
    with db.session_scope() as s:
        user = User(email="p@example.org", full_name="P", password_hash="x", pseudonym="abc123")
        s.add(user)
        s.flush()
        enr = Enrollment(user_id=user.id, flags=["guard_match"], scores={"face": 0.3})
        s.add(enr)
        s.flush()
        media = MediaObject(subject_id=user.id, kind="face_ref", content_type="image/png", size=3, sha256="0" * 64,
                            storage_key="1/face_ref/x")
        s.add_all([media, SubjectKey(subject_id=user.id, wrapped_key=b"k" * 60, master_key_id="abc")])
        s.flush()
        s.add_all([
            LivenessSession(enrollment_id=enr.id, nonce="n1", actions=["turn_left", "smile"], code="482193",
                            statement="I consent", expires_at=now + timedelta(minutes=3)),
            Consent(enrollment_id=enr.id, user_id=user.id, scopes=["face", "voice"], purposes=["personal"],
                    text_version="v1", text_sha256="f" * 64, text="I consent", expires_at=now + timedelta(days=365),
                    ip="127.0.0.1", user_agent="pytest"),
            FaceProfile(enrollment_id=enr.id, user_id=user.id, template_media_id=media.id,
                        reference_media_id=media.id, model="dlib-128"),
            VoiceProfile(enrollment_id=enr.id, user_id=user.id, template_media_id=media.id,
                         reference_media_id=media.id, model="resemblyzer-256", voiced_seconds=12.5),
            Review(enrollment_id=enr.id, reviewer_id=user.id, decision="approve", reason="ok"),
            Job(name="x", payload={"a": [1, 2]}, owner_id=user.id),
            IdempotencyKey(user_id=user.id, scope="POST /api/generations", key="k-1", request_sha256="a" * 64,
                           status=202, response='{"generation_id": 1}'),
            AuditEvent(seq=1, at=now.isoformat(), action="x", details="{}", prev_hash="0" * 64, hash="1" * 64),
        ])
        s.flush()
        s.add(Generation(subject_id=user.id, modality="speech", purpose="personal", script="hi",
                         backend="offline", watermark_id="wm1"))
    with db.session_scope() as s:
        enr = s.scalar(sa.select(Enrollment))
        assert enr.flags == ["guard_match"] and enr.state == "started"
        assert s.scalar(sa.select(LivenessSession)).actions == ["turn_left", "smile"]
        assert s.scalar(sa.select(Job)).payload == {"a": [1, 2]}
        assert s.scalar(sa.select(SubjectKey)).wrapped_key == b"k" * 60
        # deleting the user cascades to their rows, never to the audit trail
        s.delete(s.scalar(sa.select(User)))
    with db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(Enrollment.id))) == 0
        assert s.scalar(sa.select(sa.func.count(AuditEvent.id))) == 1
    db.dispose()
