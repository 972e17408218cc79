"""XTTS-v2 through Coqui TTS: a tiny random-weight model built here (real weights cannot be
downloaded) and loaded through the real Xtts.load_checkpoint path by the generation job, with the
conditioning latents cached encrypted under the subject's key."""
import pytest
import sqlalchemy as sa

from avatar.domain import generation, review
from avatar.jobs import enqueue
from avatar.jobs.core import execute
from avatar.store.db import utcnow
from avatar.store.models import Generation, MediaObject, User
from avatar.synthesis.speech import choose
from avatar.synthesis.speech.offline import OfflineSpeech
from avatar.synthesis.speech.xtts import XttsSpeech, available
from tests.conftest import make_app
from tests.likeness_factory import approved_likeness
from tests.tiny_xtts import build

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_xtts(tmp_path_factory):
    return build(tmp_path_factory.mktemp("models") / "xtts_v2")


@pytest.fixture
def xtts_app(tmp_path, tiny_xtts):
    app = make_app(tmp_path, XTTS_DIR=str(tiny_xtts))
    yield app
    app.extensions["avatar"].close()


def test_backend_choice(tiny_xtts, tmp_path):
    assert available(tiny_xtts) and isinstance(choose(str(tiny_xtts)), XttsSpeech)
    (tmp_path / "config.json").write_text("{}")  # an incomplete folder falls back to the offline default
    assert isinstance(choose(str(tmp_path)), OfflineSpeech) and isinstance(choose(""), OfflineSpeech)


def test_xtts_generation_through_the_job(xtts_app, shared_data):
    services = xtts_app.extensions["avatar"]
    subject = approved_likeness(services, shared_data, scopes=("voice",))

    def run():
        with services.db.session_scope() as s:
            gen = generation.request(s, services.gate, subject, subject, "speech", "personal",
                                     "hello this is a test", utcnow(), "offline")
            gen_id = gen.id
        job_id = enqueue(services, "generation.render", {"generation_id": gen_id}, owner_id=subject,
                         subject_id=subject, max_attempts=1)
        assert execute(services, job_id) == "succeeded"
        return gen_id

    first = run()
    with services.db.session_scope() as s:
        gen = s.get(Generation, first)
        assert gen.backend == "xtts-v2" and gen.manifest["claims"]["backend"] == "xtts-v2"
        wav = services.media.get(s, s.get(MediaObject, gen.output_media_id))
        cached = s.scalars(sa.select(MediaObject).where(MediaObject.kind == "xtts_latents")).all()
        assert wav[:4] == b"RIFF" and len(cached) == 1 and cached[0].subject_id == subject
        raw = services.media.blobs.read(cached[0].storage_key)
        assert b"voice_sha256" not in raw  # stored encrypted
    run()  # the second generation reuses the cached latents
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(MediaObject.id)).where(MediaObject.kind == "xtts_latents")) == 1
        review.revoke(s, services.media, s.get(User, subject), subject, "withdrawn")
        assert s.scalar(sa.select(sa.func.count(MediaObject.id)).where(
            MediaObject.kind == "xtts_latents", MediaObject.deleted_at.is_(None))) == 0
