"""The generation job: re-check the grant, synthesize speech, render the video, label, store."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from avatar.domain import generation as rules
from avatar.domain import webhooks
from avatar.domain.actor import Actor, audit
from avatar.jobs.core import JobContext, PermanentJobError, job
from avatar.resources import app_version, work_dir
from avatar.store.models import Generation, Job, MediaObject


class EncryptedLatents:
    """XTTS conditioning latents cached in the media store under the subject's key (so they are
    shredded with the rest on revocation), tied to the enrolled voice they came from."""

    KIND = "xtts_latents"

    def __init__(self, services, subject_id: int):
        self.services, self.subject_id = services, subject_id

    @staticmethod
    def _voice_hash(voice) -> str:
        return hashlib.sha256(np.asarray(voice, np.float32).tobytes()).hexdigest()

    def get(self, voice):
        with self.services.db.session_scope() as s:
            obj = s.scalars(sa.select(MediaObject).where(
                MediaObject.subject_id == self.subject_id, MediaObject.kind == self.KIND,
                MediaObject.deleted_at.is_(None)).order_by(MediaObject.id.desc()).limit(1)).first()
            if obj is None:
                return None
            data = np.load(io.BytesIO(self.services.media.get(s, obj)), allow_pickle=False)
        if str(data["voice_sha256"]) != self._voice_hash(voice):
            return None
        return data["latent"], data["speaker"]

    def put(self, voice, latent, speaker) -> None:
        buf = io.BytesIO()
        np.savez(buf, latent=latent, speaker=speaker, voice_sha256=np.array(self._voice_hash(voice)))
        with self.services.db.session_scope() as s:
            self.services.media.put(s, self.subject_id, self.KIND, buf.getvalue(), "application/x-npz")


def xtts_dir(config) -> Path:
    """The XTTS-v2 model folder: AVATAR_XTTS_DIR, or models/xtts_v2 (the project's, or the current
    directory's for an installed wheel)."""
    return Path(config.XTTS_DIR) if config.XTTS_DIR else work_dir("models") / "xtts_v2"


def speech_backend(services, subject_id: int):
    from avatar.synthesis.speech import choose

    return choose(str(xtts_dir(services.config)), EncryptedLatents(services, subject_id),
                  services.config.SPEECH_SOURCE)


def _failed(session, row: Job) -> None:
    """A generation that failed for good: its requester and subject hear of it (not when its
    consent was withdrawn meanwhile: they heard of the revocation)."""
    gen = session.get(Generation, (row.payload or {}).get("generation_id"))
    if gen is not None and gen.revoked_at is None:
        webhooks.emit(session, "generation.failed", {"generation_id": gen.id, "job_id": row.id, "state": "failed"},
                      [gen.requester_id, gen.subject_id], subject_id=gen.subject_id)


@job("generation.render", on_failed=_failed)
def render_generation(ctx: JobContext) -> dict:
    from avatar.domain.gate import GateRefused
    from avatar.synthesis.grant import GrantError
    from avatar.synthesis.label import aigc, content_credentials
    from avatar.synthesis.render import render_speech, render_video
    from avatar.synthesis.video import frame_count, get_backend

    svc = ctx.services
    gen_id = ctx.payload["generation_id"]
    with svc.db.session_scope() as s:
        g = s.get(Generation, gen_id)
        requester, subject, modality, purpose = g.requester_id, g.subject_id, g.modality, g.purpose
        script, wm, expires, consent_id = g.script, g.watermark_id, g.expires_at, g.consent_id
    label = aigc.make(svc.config.SERVICE_NAME, str(gen_id), wm, svc.label_key)
    try:
        grant = svc.gate.regrant(requester, subject, modality, purpose)
        ctx.progress(5, "synthesizing speech")
        speech = speech_backend(svc, subject).synthesize(grant, script)
        notice_added = speech.seconds < rules.MARKED_SECONDS and script != rules.with_notice(script)
        if notice_added:  # too short to carry the audio watermark: it ends with the spoken notice
            script = rules.with_notice(script)
            speech = speech_backend(svc, subject).synthesize(grant, script)
        ctx.progress(40 if modality == "video" else 80, "speech done")
        if modality == "video":
            head = get_backend(svc.config.VIDEO_BACKEND)
            n = frame_count(speech.seconds)

            def on_frame(i: int) -> None:
                if i % 10 == 0:
                    ctx.progress(40 + int(50 * i / n), f"rendering frame {i} of {n}")

            data = render_video(head.frames(grant, speech), speech, wm, svc.watermark_key, on_frame=on_frame,
                                label=label)
            mime, backend = "video/mp4", f"{speech.backend}+{head.name}"
        else:
            data, mime, backend = render_speech(speech, wm, svc.watermark_key, label), "audio/wav", speech.backend
        data = content_credentials.embed(
            data, mime, svc.content_credentials, watermark_id=wm, service=svc.config.SERVICE_NAME, version=app_version(),
            generation={"generation_id": gen_id, "consent_id": consent_id, "subject": grant.subject_pseudonym,
                        "modality": modality, "purpose": purpose, "backend": backend})
        credentials = content_credentials.active_manifest(data, svc.content_credentials.anchors_pem)
        grant.ensure_valid()  # last check before anything is written
    except (GateRefused, GrantError) as exc:
        raise PermanentJobError(f"consent no longer allows this: {exc}") from exc
    except content_credentials.CredentialsError as exc:
        raise PermanentJobError(str(exc)) from exc
    with svc.db.session_scope() as s:
        g = s.get(Generation, gen_id)
        obj = svc.media.put(s, subject, "output", data, mime, expires_at=expires)
        g.output_media_id, g.manifest, g.backend, g.job_id = obj.id, credentials, backend, ctx.job_id
        g.script = script  # as spoken: with the notice if it was added
        g.content_sha256 = hashlib.sha256(data).hexdigest()
        audit(s, Actor.job(ctx.job_id, requester), "generation.completed", target_type="generation", target_id=gen_id,
              details={"bytes": len(data), "backend": backend, "watermark_id": wm, "notice_added": notice_added})
        webhooks.emit(s, "generation.ready", {"generation_id": gen_id, "job_id": ctx.job_id, "state": "ready",
                                              "modality": modality}, [requester, subject], subject_id=subject)
    return {"generation_id": gen_id, "bytes": len(data), "mime": mime}
