"""What a reviewer sees for one enrollment: the capture's checks, a timeline plot with the issued
challenge windows, key frames of each action, the consent, the guard result."""
from __future__ import annotations

import io

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.domain.challenges import shown_schedule
from avatar.store.media import MediaStore
from avatar.store.models import Consent, Enrollment, LivenessSession, MediaObject


def last_capture(session: Session, enr: Enrollment) -> LivenessSession | None:
    """The passed liveness session of the enrollment (or the latest attempt)."""
    return session.scalars(sa.select(LivenessSession).where(LivenessSession.enrollment_id == enr.id,
                                                            LivenessSession.result.is_not(None))
                           .order_by(LivenessSession.passed.desc(), LivenessSession.id.desc()).limit(1)).first()


def shown_plan(ls: LivenessSession) -> dict:
    """The challenge's windows as the page showed them (the ones the capture was judged against)."""
    return shown_schedule(ls.plan or {}, ls.prompt_times) if ls.plan else {}


def timeline_png(result: dict, plan: dict) -> bytes:
    """Yaw, pitch, eye openness, mouth opening and speech energy over time, with each issued
    action's window and the statement window shaded and labeled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.get("series", {})
    t = np.array(s.get("t", []), dtype=float)

    def arr(key):
        return np.array([np.nan if v is None else v for v in s.get(key, [])], dtype=float)

    fig, axes = plt.subplots(4, 1, figsize=(10, 7), sharex=True, constrained_layout=True)
    panels = [(axes[0], [("yaw", "yaw °"), ("pitch", "pitch °")]), (axes[1], [("eye_open", "eye openness")]),
              (axes[2], [("mouth_open", "mouth opening"), ("smile", "smile")]), (axes[3], [("speech_db", "speech dB")])]
    for ax, keys in panels:
        for key, label in keys:
            if len(s.get(key, [])) == len(t) and len(t):
                ax.plot(t, arr(key), label=label, linewidth=1.4)
        for step in plan.get("actions", []):
            ax.axvspan(step["start"], step["end"], color="tab:orange", alpha=0.12)
        if plan.get("statement"):
            ax.axvspan(plan["statement"]["start"], plan["statement"]["end"], color="tab:green", alpha=0.08)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    for step in plan.get("actions", []):
        axes[0].text((step["start"] + step["end"]) / 2, 1.02, step["action"], transform=axes[0].get_xaxis_transform(),
                     ha="center", fontsize=8)
    for ev in result.get("events", []):
        axes[0].axvline(ev["start"], color="grey", linewidth=0.6, linestyle=":")
    axes[-1].set_xlabel("seconds from the start of the recording (orange: issued actions, green: statement)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def key_frames(recording: bytes, result: dict, size: int = 200) -> list[dict]:
    """A JPEG of the recording at the time each issued action was matched."""
    import cv2

    from avatar.analysis.media import MediaFile

    steps = [s for s in result.get("checks", {}).get("actions", {}).get("steps", []) if s.get("ok")]
    if not steps:
        return []
    with MediaFile(recording) as mf:
        frames = mf.frames(fps=10, max_side=size)
    out = []
    for s in steps:
        i = min(len(frames) - 1, int(round(s["at"] * 10)))
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(frames.images[i], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            out.append({"action": s["action"], "at": s["at"], "jpeg": jpg.tobytes()})
    return out


def statement_audio(recording: bytes, plan: dict) -> bytes:
    """The statement window of the recording as WAV."""
    from avatar.analysis.media import MediaFile
    from avatar.domain.enrollment import wav_bytes

    with MediaFile(recording) as mf:
        audio = mf.audio()
    st = plan.get("statement", {"start": 0, "end": len(audio) / 16000})
    return wav_bytes(audio[int(max(0, st["start"] - 0.5) * 16000): int((st["end"] + 2) * 16000)])


def consent_of(session: Session, enr: Enrollment) -> Consent | None:
    return session.scalars(sa.select(Consent).where(Consent.enrollment_id == enr.id).order_by(Consent.id.desc())).first()


def recording_bytes(session: Session, media: MediaStore, ls: LivenessSession) -> bytes | None:
    if ls is None or ls.recording_media_id is None:
        return None
    return media.get(session, session.get(MediaObject, ls.recording_media_id))
