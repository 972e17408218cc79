"""Synthetic media at the door (issue 18): one of this installation's outputs fed in as the enrollment
capture or as the read paragraph is refused with a neutral hint, flagged for reviewers with the
generation its watermark points to, and audited, also with the visible label cropped away and the
file scaled and re-encoded. The outputs are made by the product's own renderer (render_video) over
the passing capture's frames (conftest.own_outputs); the video mark reads after the crop too (the
detector searches the crop), and so does the audio mark."""
import base64
import io

import pytest
import sqlalchemy as sa

from avatar.analysis.challenge import HINTS
from avatar.jobs.core import execute
from avatar.store.models import AuditEvent, Enrollment, Generation, LivenessSession
from tests.conftest import OWN_OUTPUT_KEY as KEY
from tests.conftest import OWN_OUTPUT_MARK as WATERMARK_ID
from tests.conftest import SEED
from tests.support.enrollment import api_post, backdate, login, new_session, upload

pytestmark = pytest.mark.app_config(CHALLENGE_SEED=SEED, WATERMARK_KEY=base64.b64encode(KEY).decode())


def _generation(services) -> int:
    with services.db.session_scope() as s:
        gen = Generation(subject_id=1, modality="video", purpose="personal", script="hello", backend="test",
                         watermark_id=WATERMARK_ID)
        s.add(gen)
        s.flush()
        return gen.id


@pytest.mark.parametrize("variant", ["labeled", "cropped"])
def test_our_output_as_capture_is_refused_flagged_and_audited(client, services, own_outputs, variant):
    login(client, services)
    gen_id = _generation(services)
    ch = new_session(client)
    backdate(services, ch["nonce"])
    resp = upload(client, ch["nonce"], own_outputs[variant])
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["job_id"]
    assert execute(services, job_id) == "succeeded"
    result = client.get(f"/api/jobs/{job_id}").get_json()["result"]
    assert result["passed"] is False and result["hint"] == HINTS["voice"], result  # neutral: says nothing of marks
    with services.db.session_scope() as s:
        ls = s.scalar(sa.select(LivenessSession))
        found = ls.result["generated_media"]
        assert found["generation_id"] == gen_id and found["watermark_id"] == WATERMARK_ID
        assert found["found_in"] == ["audio", "video"], found
        enr = s.scalar(sa.select(Enrollment))
        assert "generated_media" in enr.flags and enr.state == "started"
        ev = s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "enrollment.generated_media_refused"))
        assert ev is not None and f'"generation_id":{gen_id}' in ev.details and '"upload":"capture"' in ev.details


def test_real_capture_is_not_taken_for_our_output(client, services, passing_clip):
    login(client, services)
    _generation(services)
    ch = new_session(client)
    backdate(services, ch["nonce"])
    job_id = upload(client, ch["nonce"], passing_clip).get_json()["job_id"]
    assert execute(services, job_id) == "succeeded"
    assert client.get(f"/api/jobs/{job_id}").get_json()["result"]["passed"] is True
    with services.db.session_scope() as s:
        assert "generated_media" not in (s.scalar(sa.select(Enrollment)).flags or [])
        assert s.scalar(sa.select(LivenessSession)).result["checks"]["voice"]["synthetic_speech"]["synthetic"] is False


def test_our_speech_as_the_read_paragraph_is_refused(client, services, own_outputs, passing_clip):
    from avatar.analysis.media import MediaFile, wav_bytes
    login(client, services)
    gen_id = _generation(services)
    ch = new_session(client)
    backdate(services, ch["nonce"])
    job_id = upload(client, ch["nonce"], passing_clip).get_json()["job_id"]
    assert execute(services, job_id) == "succeeded"
    with MediaFile(own_outputs["cropped"]) as mf:
        speech = mf.audio()
    resp = api_post(client, "/api/enroll/paragraph", data={"audio": (io.BytesIO(wav_bytes(speech)), "p.wav", "audio/wav")},
                    content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["job_id"]
    assert execute(services, job_id) == "succeeded"
    result = client.get(f"/api/jobs/{job_id}").get_json()["result"]
    assert result == {"accepted": False, "hint": "Read the paragraph aloud yourself, in your own voice."}
    with services.db.session_scope() as s:
        assert "generated_media" in s.scalar(sa.select(Enrollment)).flags
        ev = s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "enrollment.generated_media_refused"))
        assert ev is not None and f'"generation_id":{gen_id}' in ev.details and '"upload":"voice_extra"' in ev.details
