"""Enrollment jobs: verify a capture against its challenge; extend the voice with a read paragraph."""
from __future__ import annotations

import logging

import numpy as np

from avatar.domain.actor import Actor, audit
from avatar.jobs.core import JobContext, PermanentJobError, job
from avatar.store.models import Enrollment, LivenessSession, MediaObject, User, VoiceProfile

MEDIA_LIMITS_SECONDS = 90
log = logging.getLogger(__name__)


def _limits():
    from avatar.analysis.media import Limits

    return Limits(max_seconds=MEDIA_LIMITS_SECONDS, max_pixels=1920 * 1080)


def statement_footage(mf, plan: dict) -> bytes | None:
    """The person reading the statement, facing the camera, with their voice: the footage the
    talking head is made from (synthesis/video/example_based.py). None when it cannot be cut (the
    likeness then animates its reference picture)."""
    from avatar.analysis.media import MediaError

    st = plan["statement"]
    try:
        return mf.cut(st["start"], st["end"] - st["start"])
    except MediaError:
        return None


def voice_analysis(wav: bytes) -> bytes | None:
    """The offline voice's analysis of a voice reference, as it will be decoded at its use, to store
    with the profile (synthesis/speech/voice_analysis.py). It only spares a generation this work: if
    it fails, the failure is logged and the voice is analysed at its first use instead."""
    from avatar.analysis.media import decode_audio
    from avatar.synthesis.speech.offline import analysed_voice

    try:
        return analysed_voice(decode_audio(wav))
    except Exception:  # noqa: BLE001 - an optional speed-up must not undo a passed enrollment step
        log.exception("the voice reference could not be analysed; it will be at its first use")
        return None


@job("enrollment.verify")
def verify_enrollment_capture(ctx: JobContext) -> dict:
    """Checks the uploaded capture against its issued challenge. The owner sees only pass/fail
    and a hint; reviewers see the full report."""
    from avatar.analysis.challenge import HINTS, verify_capture
    from avatar.analysis.face import aligned_face
    from avatar.analysis.liveness import SAMPLE_FPS, SYNC_FPS
    from avatar.analysis.media import MediaError, MediaFile
    from avatar.domain import DomainError
    from avatar.domain import enrollment as rules
    from avatar.domain.challenges import shown_schedule
    from avatar.domain.verification import own_output_in

    svc = ctx.services
    ls_id = ctx.payload["liveness_session_id"]
    with svc.db.session_scope() as s:
        ls = s.get(LivenessSession, ls_id)
        data = svc.media.get(s, s.get(MediaObject, ls.recording_media_id))
        # the windows as the page showed them (a late prompt moves its window, within a bound)
        plan, code = shown_schedule(dict(ls.plan), ls.prompt_times), ls.code
    ctx.progress(10, "reading the recording")
    verdict = own_output = footage = None
    try:
        with MediaFile(data, _limits()) as mf:
            # the length measured from the packets (MediaRecorder's webm has no duration header)
            with svc.db.session_scope() as s:
                rules.check_freshness(s.get(LivenessSession, ls_id), mf.probe.duration)
                own_output = own_output_in(s, mf, svc.watermark_key)
            if own_output is None:
                ctx.progress(20, "analysing face and voice")
                # no more than the challenge's length is decoded, whatever the file holds
                seconds = plan.get("duration", 30) + rules.LENGTH_SLACK
                frames, audio = mf.clip(SAMPLE_FPS, max_side=640, seconds=seconds)
                verdict = verify_capture(frames, audio, plan, code, mf.iter_frames(SYNC_FPS, 640, seconds))
                if verdict.passed:
                    footage = statement_footage(mf, plan)
        if own_output is not None:  # one of our outputs fed in as the camera: refused, whatever it shows
            failure = HINTS["voice"]
            report = {"passed": False, "generated_media": own_output,
                      "failures": [f"the recording carries this installation's watermark {own_output['watermark_id']} "
                                   f"(generation {own_output['generation_id']})"]}
        else:
            failure = None if verdict.passed else verdict.hint
            report = verdict.report()
            if "prompt_lags" in plan:
                report["prompt_lags"] = plan["prompt_lags"]
    except (MediaError, DomainError) as exc:
        failure, report = str(exc), {"passed": False, "failures": [str(exc)]}
    wav = analysis = None
    if failure is None and verdict.voiced is not None and verdict.voiced.size:
        wav = rules.wav_bytes(verdict.voiced)
        if verdict.voice_template is not None:
            ctx.progress(75, "analysing the voice for generation")
            analysis = voice_analysis(wav)
    ctx.progress(85, "saving the result")
    with svc.db.session_scope() as s:
        ls = s.get(LivenessSession, ls_id)
        enr = s.get(Enrollment, ls.enrollment_id)
        user = s.get(User, enr.user_id)
        if failure is None and verdict.face_template is not None:
            ref = aligned_face(frames.images[verdict.reference_frame], verdict.signals.observations[verdict.reference_frame])
            seconds = verdict.voiced.size / 16000 if verdict.voiced is not None else 0.0
            rules.record_pass(s, svc.media, user, ls, report, verdict.face_template, rules.png_bytes(ref),
                              verdict.voice_template, wav, seconds, footage=footage, voice_analysis=analysis)
            locked = False
        else:
            failure = failure or "Keep your face in the oval, in good light."
            locked = rules.record_failure(s, user, ls, report)
            if own_output is not None:
                rules.flag_generated_media(enr)
        actor = Actor.job(ctx.job_id, user.id)
        audit(s, actor, "enrollment.capture_verified" if failure is None else "enrollment.capture_failed",
              target_type="enrollment", target_id=enr.id,
              details={"liveness_session": ls_id, "failures": report.get("failures", []), "locked": locked})
        if own_output is not None:
            audit(s, actor, "enrollment.generated_media_refused", target_type="enrollment", target_id=enr.id,
                  details={"liveness_session": ls_id, "upload": "capture", **own_output})
    if failure is not None:
        return {"passed": False, "hint": failure, "locked": locked}
    return {"passed": True, "hint": None}


@job("enrollment.voice_extra")
def add_paragraph_reading(ctx: JobContext) -> dict:
    """Adds a read paragraph to the voice profile if it is the same speaker as the live capture."""
    from avatar.analysis.checks import speech_check
    from avatar.analysis.media import MediaError, decode_audio
    from avatar.analysis.voice import (
        SPEAKER_MATCH_THRESHOLD,
        VoiceError,
        speaker_similarity,
        speaker_template,
        voice_activity,
        voiced_audio,
    )
    from avatar.domain import enrollment as rules
    from avatar.domain.enrollment import wav_bytes
    from avatar.domain.verification import audio_mark_in, own_output_of_mark
    from avatar.store.templates import load_template

    svc = ctx.services
    actor = Actor.job(ctx.job_id, ctx.owner_id)
    with svc.db.session_scope() as s:
        vp = s.get(VoiceProfile, ctx.payload["voice_profile_id"])
        upload = s.get(MediaObject, ctx.payload["media_id"])
        data = svc.media.get(s, upload)
        current = load_template(s, svc.media, vp.template_media_id)
        ref_audio = decode_audio(svc.media.get(s, s.get(MediaObject, vp.reference_media_id)))
    ctx.progress(20, "checking the voice")
    try:
        audio = decode_audio(data, _limits())
        voiced = voiced_audio(audio, voice_activity(audio))
        template = speaker_template(voiced)
    except (MediaError, VoiceError) as exc:
        raise PermanentJobError(str(exc)) from exc
    origin = speech_check(audio, audio_mark_in(audio, svc.watermark_key))
    if origin["synthetic"]:  # generated speech (ours by its mark, or by how it sounds) adds nothing to a voice
        mark = origin["watermark"] if origin["watermark"] and origin["watermark"]["found"] else None
        with svc.db.session_scope() as s:
            vp = s.get(VoiceProfile, ctx.payload["voice_profile_id"])
            svc.media.delete(s, s.get(MediaObject, ctx.payload["media_id"]))
            audit(s, actor, "enrollment.voice_extra_refused", target_type="voice_profile", target_id=vp.id,
                  details={"synthetic_speech": {k: origin[k] for k in ("score", "max_window")},
                           "reasons": origin["reasons"]})
            if mark is not None:
                rules.flag_generated_media(s.get(Enrollment, vp.enrollment_id))
                audit(s, actor, "enrollment.generated_media_refused", target_type="enrollment",
                      target_id=vp.enrollment_id, details={"upload": "voice_extra", **own_output_of_mark(s, mark)})
        return {"accepted": False, "hint": "Read the paragraph aloud yourself, in your own voice."}
    sim = speaker_similarity(current, template)
    if sim < SPEAKER_MATCH_THRESHOLD:
        with svc.db.session_scope() as s:
            svc.media.delete(s, s.get(MediaObject, ctx.payload["media_id"]))
            audit(s, actor, "enrollment.voice_extra_refused", target_type="voice_profile",
                  target_id=ctx.payload["voice_profile_id"], details={"speaker_similarity": round(float(sim), 3)})
        return {"accepted": False, "hint": "This reading does not sound like the voice in your live capture."}
    combined = np.concatenate([ref_audio, voiced])
    new_template = speaker_template(combined)
    wav = wav_bytes(combined)
    analysis = voice_analysis(wav)
    with svc.db.session_scope() as s:
        vp = s.get(VoiceProfile, ctx.payload["voice_profile_id"])
        rules.replace_voice(s, svc.media, vp, new_template, wav, combined.size / 16000, analysis)
        seconds = vp.voiced_seconds
        audit(s, actor, "enrollment.voice_extra_added", target_type="voice_profile", target_id=vp.id,
              details={"voiced_seconds": seconds, "synthetic_speech": {k: origin[k] for k in ("score", "flagged")}})
    return {"accepted": True, "voiced_seconds": seconds}


@job("enrollment.reading")
def check_camera_reading(ctx: JobContext) -> dict:
    """Checks the on-camera reading against the likeness of the live capture (analysis.reading):
    passed, it becomes the footage the talking head is made from and adds its speech to the voice;
    refused, the upload is deleted and the person gets a hint. One of our outputs fed in is refused
    and flagged for reviewers, as for the capture."""
    from avatar.analysis.checks import speech_check
    from avatar.analysis.liveness import SAMPLE_FPS, SYNC_FPS
    from avatar.analysis.media import MediaError, MediaFile, decode_audio, wav_bytes
    from avatar.analysis.reading import HINTS, verify_reading
    from avatar.analysis.voice import VoiceError, speaker_template
    from avatar.domain import enrollment as rules
    from avatar.domain.verification import audio_mark_in, own_output_in
    from avatar.store.templates import load_template

    svc = ctx.services
    actor = Actor.job(ctx.job_id, ctx.owner_id)
    with svc.db.session_scope() as s:
        enr = s.get(Enrollment, ctx.payload["enrollment_id"])
        data = svc.media.get(s, s.get(MediaObject, ctx.payload["media_id"]))
        face_t = load_template(s, svc.media, enr.face_profile.template_media_id)
        vp = enr.voice_profile
        voice_t = load_template(s, svc.media, vp.template_media_id) if vp is not None else None
        voice_ref = decode_audio(svc.media.get(s, s.get(MediaObject, vp.reference_media_id))) if vp is not None else None
    ctx.progress(10, "reading the recording")
    verdict = own_output = footage = origin = None
    try:
        with MediaFile(data, _limits()) as mf:
            with svc.db.session_scope() as s:
                own_output = own_output_in(s, mf, svc.watermark_key)
            if own_output is None:
                ctx.progress(20, "checking face and voice")
                frames, audio = mf.clip(SAMPLE_FPS, max_side=640, need_audio=True)
                verdict = verify_reading(frames, audio, mf.iter_frames(SYNC_FPS, 640), face_t, voice_t)
                origin = speech_check(audio, audio_mark_in(audio, svc.watermark_key))
                if origin["synthetic"]:
                    verdict.passed, verdict.hint = False, HINTS["voice"]
                    verdict.failures.append("the speech sounds generated by a machine, not spoken")
                if verdict.passed:
                    footage = mf.cut(0.0, mf.probe.duration)
        if own_output is not None:
            hint, report = HINTS["voice"], {
                "passed": False, "generated_media": own_output,
                "failures": [f"the recording carries this installation's watermark {own_output['watermark_id']} "
                             f"(generation {own_output['generation_id']})"]}
        else:
            hint, report = verdict.hint, {**verdict.report(), "synthetic_speech": {
                k: origin[k] for k in ("synthetic", "flagged", "score")}}
    except MediaError as exc:
        hint, report = str(exc), {"passed": False, "failures": [str(exc)]}
    voice = None
    if footage is not None and verdict.voiced is not None and voice_ref is not None:
        combined = np.concatenate([voice_ref, verdict.voiced])
        try:
            template, wav = speaker_template(combined), wav_bytes(combined)
            voice = (template, wav, combined.size / 16000, voice_analysis(wav))
        except VoiceError:
            voice = None
    ctx.progress(85, "saving the result")
    with svc.db.session_scope() as s:
        enr = s.get(Enrollment, ctx.payload["enrollment_id"])
        if footage is not None and not rules.takes_reading(enr):  # submitted while it was checked
            footage, hint = None, HINTS["submitted"]
            report = {**report, "failures": [f"the enrollment was {enr.state} before the reading's check ended"]}
        if footage is not None:
            rules.record_reading(s, svc.media, enr, footage, report["checks"], voice)
            audit(s, actor, "enrollment.reading_added", target_type="enrollment", target_id=enr.id,
                  details={"checks": report["checks"], "synthetic_speech": report["synthetic_speech"],
                           "voiced_seconds": None if voice is None else round(voice[2], 2)})
        else:
            svc.media.delete(s, s.get(MediaObject, ctx.payload["media_id"]))
            audit(s, actor, "enrollment.reading_refused", target_type="enrollment", target_id=enr.id,
                  details={"failures": report["failures"]})
            if own_output is not None:
                rules.flag_generated_media(enr)
                audit(s, actor, "enrollment.generated_media_refused", target_type="enrollment", target_id=enr.id,
                      details={"upload": "reading", **own_output})
    if footage is None:
        return {"accepted": False, "hint": hint}
    return {"accepted": True, "hint": None, "voiced_seconds": None if voice is None else round(voice[2], 2)}
