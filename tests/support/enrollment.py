"""An account and an enrollment driven through the JSON API, as the tests of enrollment, review and
assisted enrollment need them."""
import io
from datetime import timedelta

import sqlalchemy as sa

from avatar.jobs.core import execute
from avatar.store.models import LivenessSession
from tests.conftest import STRONG_PASSWORD, csrf_token


def login(client, services, email="ada@example.org", name="Ada Lovelace"):
    from avatar.domain.accounts import register

    with services.db.session_scope() as s:
        uid = register(s, email, name, STRONG_PASSWORD).id
    token = csrf_token(client)
    client.post("/auth/login", data={"email": email, "password": STRONG_PASSWORD, "csrf_token": token})
    return uid


def api_post(client, url, **kw):
    token = csrf_token(client, "/enroll/capture")
    return client.post(url, headers={"X-CSRFToken": token, "Accept": "application/json"}, **kw)


def new_session(client):
    resp = api_post(client, "/api/enroll/sessions")
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def upload(client, nonce, data, name="capture.mp4", mimetype="video/mp4", **fields):
    return api_post(client, f"/api/enroll/sessions/{nonce}/recording",
                    data={"recording": (io.BytesIO(data), name, mimetype), **fields}, content_type="multipart/form-data")


def backdate(services, nonce, seconds=30):
    """The capture takes ~15 s to record: move the issue time back as a real client's would be."""
    with services.db.session_scope() as s:
        ls = s.scalar(sa.select(LivenessSession).where(LivenessSession.nonce == nonce))
        ls.issued_at -= timedelta(seconds=seconds)


def run_capture(client, services, data):
    ch = new_session(client)
    backdate(services, ch["nonce"])
    resp = upload(client, ch["nonce"], data)
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["job_id"]
    assert execute(services, job_id) == "succeeded"
    return client.get(f"/api/jobs/{job_id}").get_json()["result"]


def give_consent(client, face=True, voice=False):
    token = csrf_token(client, "/enroll/consent")
    data = {"csrf_token": token, "personal": "y", "days": "365"}
    if face:
        data["face"] = "y"
    if voice:
        data["voice"] = "y"
    return client.post("/enroll/consent", data=data)


S1_ENROLLED = ["grid_s1_bbaf2n", "grid_s1_pbbjzp", "grid_s1_sran8n", "grid_s1_lbax8n"]


def s1_likeness(services, shared_data, uid: int) -> None:
    """A captured enrollment (as after the live capture) with GRID speaker s1's face (template of his
    sharpest frames in one clip, that clip as the footage) and voice (four clips): for the tests of
    the on-camera reading, whose bona fide material is his other clips."""
    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    from avatar.analysis.challenge import best_frames
    from avatar.analysis.face import face_embedding
    from avatar.analysis.liveness import track
    from avatar.analysis.media import decode_clip
    from avatar.analysis.voice import speaker_template, voice_activity, voiced_audio
    from avatar.domain.enrollment import png_bytes, wav_bytes
    from avatar.store.models import Enrollment, FaceProfile, VoiceProfile
    from avatar.store.templates import save_template

    talking = shared_data / "talking"
    frames, _, _ = decode_clip((talking / f"{S1_ENROLLED[0]}.mp4").read_bytes(), 10, 640)
    sig = track(frames)
    best = best_frames(sig, 3) or sorted(range(len(frames)), key=lambda i: -(sig.observations[i].sharpness
                                                                              if sig.observations[i] else -1))[:3]
    face_t = np.mean([face_embedding(frames.images[i], sig.observations[i]) for i in best], axis=0).astype(np.float32)
    voice = np.concatenate([resample_poly(sf.read(talking / f"{stem}.wav", dtype="float32")[0], 160, 441)
                            for stem in S1_ENROLLED]).astype(np.float32)
    voice = voiced_audio(voice, voice_activity(voice))
    with services.db.session_scope() as s:
        enr = Enrollment(user_id=uid, state="captured")
        s.add(enr)
        s.flush()
        m = services.media
        s.add(FaceProfile(enrollment_id=enr.id, user_id=uid, model="dlib-resnet-128", quality={},
                          template_media_id=save_template(s, m, uid, "face_template", face_t).id,
                          reference_media_id=m.put(s, uid, "face_ref", png_bytes(frames.images[best[0]]), "image/png").id,
                          footage_media_id=m.put(s, uid, "face_footage", (talking / f"{S1_ENROLLED[0]}.mp4").read_bytes(),
                                                 "video/mp4").id))
        s.add(VoiceProfile(enrollment_id=enr.id, user_id=uid, model="resemblyzer-partials-256",
                           voiced_seconds=len(voice) / 16000,
                           template_media_id=save_template(s, m, uid, "voice_template", speaker_template(voice)).id,
                           reference_media_id=m.put(s, uid, "voice_ref", wav_bytes(voice), "audio/wav").id))
