"""`avatar demo`: the whole chain on a throwaway instance, through the app's own HTTP handlers.

An admin records a walk-in person's assisted enrollment (ID attested), the capture answers the
issued challenge with real footage from ../shared/data and is verified on the server, the person
reads a paragraph and consents, another reviewer approves, the person asks for a short clip, the
clip is downloaded and verified (also after re-encoding), then the person withdraws consent and the
same file reads as revoked. Every step lands in report.json with its timing.

Honest limits, also written into the report: the challenge generator is seeded on this instance
(test-only setting) so that prerecorded footage can answer it, and the capture's voice is a
different real speaker (spoken digits) than the man in the footage.
"""
from __future__ import annotations

import json
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from avatar.demo.browser import DemoError, WebUser, expect
from avatar.demo.footage import FFMPEG, FOOTAGE, SR, assemble_capture, digit_audio, fitting_seed

PASSWORD = "Consent-first-walkthrough-26!"  # noqa: S105 - the throwaway demo instance's; contains no part of the demo names (passwords.check_strength)
PERSON = ("walkin@demo.invalid", "Dana Demo")
SCRIPT = ("Hello, this is my own avatar. I recorded my consent in person, and every clip like this one "
          "is labeled as generated.")


class Demo:
    def __init__(self, out: Path, data: Path, log=print):
        self.out = out
        self.data = data
        self.log = log
        self.steps: list[dict] = []
        self.app = None

    @contextmanager
    def step(self, name: str):
        self.log(f"demo: {name} …")
        t0 = time.monotonic()
        entry = {"step": name}
        self.steps.append(entry)
        try:
            yield entry
        except Exception as exc:
            entry.update(ok=False, error=str(exc), seconds=round(time.monotonic() - t0, 2))
            raise
        entry.update(ok=True, seconds=round(time.monotonic() - t0, 2))

    def start_instance(self) -> None:
        from avatar import create_app
        from avatar.domain.accounts import register
        from avatar.store.migrate import upgrade
        from avatar.store.models import Role

        instance = self.out / "instance"
        db_url = f"sqlite:///{instance / 'avatar.db'}"
        upgrade(db_url)
        self.app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": db_url, "JOB_RUNNER": "threads",
                               "TESTING": True, "CHALLENGE_SEED": fitting_seed(), "SERVICE_NAME": "avatar demo"})
        with self.services.db.session_scope() as s:
            register(s, "admin@demo.invalid", "Ada Admin", PASSWORD, role=Role.ADMIN)
            register(s, "reviewer@demo.invalid", "Rui Reviewer", PASSWORD, role=Role.REVIEWER)

    @property
    def services(self):
        return self.app.extensions["avatar"]

    def close(self) -> None:
        if self.app is not None:
            self.services.close()

    # -- the chain -------------------------------------------------------------------------------
    def run(self) -> dict:
        with self.step("throwaway instance with an admin and a reviewer"):
            self.start_instance()
        person = WebUser(self.app, PERSON[0], PASSWORD)
        admin = WebUser(self.app, "admin@demo.invalid", PASSWORD)
        reviewer = WebUser(self.app, "reviewer@demo.invalid", PASSWORD)
        with self.step("the person registers"):
            expect(person.form("/auth/register", "/auth/register", email=PERSON[0], full_name=PERSON[1],
                               password=PASSWORD, confirm=PASSWORD), (302, 303), "registration")
        with self.step("admin attests the ID check and starts an assisted enrollment"):
            admin.login()
            expect(admin.form("/admin/assisted", "/admin/assisted", email=PERSON[0], document_type="passport",
                              last4="D3M0", attest="y"), 303, "assisted enrollment")
        with self.step("live capture answers the issued challenge; the server verifies it") as st:
            st.update(self.capture(admin))
        with self.step("the person reads a paragraph (same voice: accepted)") as st:
            st.update(self.paragraph(admin))
        with self.step("consent: face and voice, personal use, 30 days"):
            expect(admin.form("/enroll/consent", "/enroll/consent", face="y", voice="y", personal="y", days="30"),
                   302, "consent")
        enrollment_id = self.enrollment_id()
        with self.step("a second reviewer approves on the evidence"):
            reviewer.login()
            expect(reviewer.form(f"/review/{enrollment_id}", f"/review/{enrollment_id}", decision="approve",
                                 reason="Capture passed every check; ID attested in person by the admin."),
                   303, "approval")
        with self.step("the person asks for a talking-head clip and downloads it") as st:
            person.login()
            st.update(self.generate(person))
        video = self.out / "avatar.mp4"
        with self.step("how the clip compares with the person's own capture (strip.png)") as st:
            st.update(self.compare(video, self.out / "capture.mp4"))
        with self.step("verify the clip as delivered") as st:
            st["report"] = self.verify(video)
            self.require(st["report"], generated=True, revoked=False)
            if not (st["report"]["content_credentials"] or {}).get("ours"):
                raise DemoError(f"the clip's Content Credentials are not ours: {st['report']['content_credentials']}")
        with self.step("verify after re-encoding to 360p at low bitrate") as st:
            small = self.out / "avatar-360p.mp4"
            subprocess.run(FFMPEG + ["-i", str(video), "-vf", "scale=360:360", "-c:v", "libx264", "-b:v", "300k",
                                     "-c:a", "aac", "-b:a", "48k", str(small)], check=True, capture_output=True)
            st["report"] = self.verify(small)
            self.require(st["report"], generated=True, revoked=False)
        with self.step("a file not made here reads as not generated") as st:
            st["report"] = self.verify(self.data / FOOTAGE)
            self.require(st["report"], generated=False)
        with self.step("the person withdraws consent; the clip now reads as revoked") as st:
            expect(person.form("/account", "/account/revoke"), 303, "withdrawal")
            st["report"] = self.verify(small)
            self.require(st["report"], generated=True, revoked=True)
        with self.step("the audit chain holds") as st:
            from avatar.store import audit

            result = audit.verify_chain(self.services.db)
            st["events"] = result.events
            if not result.ok:
                raise DemoError(f"audit chain broken at event {result.first_broken_id}: {result.reason}")
        return {"ok": True, "steps": self.steps, "outputs": sorted(p.name for p in self.out.iterdir() if p.is_file()),
                "notes": NOTES}

    def capture(self, user: WebUser) -> dict:
        ch = expect(user.api("POST", "/api/enroll/sessions"), 201, "challenge").get_json()
        issued = time.monotonic()
        clip = assemble_capture(ch["plan"], ch["code"], self.data / FOOTAGE, self.data / "digits",
                                self.out / "capture.mp4")
        # a recording cannot be longer than the time since its challenge was issued: wait as
        # long as the person in front of the camera would have been recording
        time.sleep(max(0.0, ch["plan"]["duration"] + 1 - (time.monotonic() - issued)))
        r = expect(user.upload(f"/api/enroll/sessions/{ch['nonce']}/recording", "recording", clip.read_bytes(),
                               "capture.mp4", "video/mp4"), 202, "capture upload")
        result = user.wait_job(r.get_json()["job_id"])["result"]
        if not result.get("passed"):
            raise DemoError(f"the capture did not pass: {result.get('hint')}")
        return {"actions": [a["action"] for a in ch["plan"]["actions"]], "code": ch["code"], "result": result}

    def paragraph(self, user: WebUser) -> dict:
        import soundfile as sf

        pause = np.zeros(SR // 8, np.float32)
        speech = np.concatenate([np.concatenate([digit_audio(self.data / "digits", str(d), "george", take=t), pause])
                                 for t in range(3) for d in range(10)])
        path = self.out / "paragraph.wav"
        sf.write(path, speech, SR)
        r = expect(user.upload("/api/enroll/paragraph", "audio", path.read_bytes(), "paragraph.wav", "audio/wav"),
                   202, "paragraph upload")
        result = user.wait_job(r.get_json()["job_id"])["result"]
        if not result.get("accepted"):
            raise DemoError(f"the paragraph was refused: {result.get('hint')}")
        return {"result": result}

    def generate(self, user: WebUser) -> dict:
        r = expect(user.api("POST", "/api/generations", page="/generate",
                            json={"modality": "video", "purpose": "personal", "script": SCRIPT}), 202, "generation")
        gen_id = r.get_json()["generation_id"]
        job = user.wait_job(r.get_json()["job_id"])
        video = expect(user.client.get(f"/generate/{gen_id}/download"), 200, "download").data
        (self.out / "avatar.mp4").write_bytes(video)
        manifest = expect(user.client.get(f"/generate/{gen_id}/manifest.json"), 200, "manifest").data
        (self.out / "avatar.mp4.c2pa.json").write_bytes(manifest)
        return {"generation_id": gen_id, "script": SCRIPT, "job_seconds": _seconds(job), "bytes": len(video)}

    def compare(self, video: Path, capture: Path) -> dict:
        """The talking-head figures (analysis.talking_figures) of the clip and of the capture it was
        made from, the same face template for both; strip.png shows frames of each."""
        from avatar.analysis.challenge import best_frames
        from avatar.analysis.face import face_embedding
        from avatar.analysis.liveness import track
        from avatar.analysis.media import decode_clip
        from avatar.analysis.talking_figures import clip_figures, strip_png

        made, made_audio, _ = decode_clip(video.read_bytes(), 25, max_side=512, need_audio=True)
        real, real_audio, _ = decode_clip(capture.read_bytes(), 25, max_side=512, need_audio=True)
        real_sig = track(real)
        k = best_frames(real_sig, 1)[0]
        template = face_embedding(real.images[k], real_sig.observations[k])
        (self.out / "strip.png").write_bytes(strip_png(made.images, real.images))
        return {"generated": clip_figures(made, made_audio, template, text=SCRIPT),
                "capture": clip_figures(real, real_audio, template, real_sig)}

    def verify(self, path: Path) -> dict:
        """The public verification API, as anyone would call it."""
        from io import BytesIO

        files = {"file": (BytesIO(path.read_bytes()), path.name)}
        client = self.app.test_client()
        return expect(client.post("/api/verify", data=files, content_type="multipart/form-data"), 200,
                      f"verify {path.name}").get_json()

    @staticmethod
    def require(report: dict, **expected) -> None:
        wrong = {k: report.get(k) for k, v in expected.items() if report.get(k) != v}
        if wrong:
            raise DemoError(f"verification gave {wrong}, expected {expected}")

    def enrollment_id(self) -> int:
        import sqlalchemy as sa

        from avatar.store.models import Enrollment, User

        with self.services.db.session_scope() as s:
            return s.scalar(sa.select(Enrollment.id).join(User, User.id == Enrollment.user_id)
                            .where(User.email == PERSON[0]).order_by(Enrollment.id.desc()))


def _seconds(job: dict) -> float | None:
    from datetime import datetime

    if not job.get("finished_at"):
        return None
    parse = lambda t: datetime.fromisoformat(t.rstrip("Z"))  # noqa: E731
    return round((parse(job["finished_at"]) - parse(job["created_at"])).total_seconds(), 2)


NOTES = [
    "This instance is throwaway: it lives in the output folder's instance/ and is not the app's own.",
    "The challenge generator is seeded here (a test-only setting) so that prerecorded footage can answer "
    "it; real captures get unseeded random challenges.",
    "The capture's voice is a different real speaker (spoken digits) than the man in the footage: "
    "the shared data has no recording of one person both on camera and reading digits.",
]


def run_demo(out: Path, data: Path, log=print) -> dict:
    """Runs the chain into `out` (created; must be empty) and writes out/report.json. Raises
    DemoError naming the step that failed; the report is written either way."""
    if out.exists() and any(out.iterdir()):
        raise DemoError(f"{out} is not empty; give a new or empty folder")
    if not (data / FOOTAGE).is_file():
        raise DemoError(f"the shared test data is not at {data} (no {FOOTAGE})")
    out.mkdir(parents=True, exist_ok=True)
    demo = Demo(out, data, log)
    report: dict = {"ok": False, "steps": demo.steps}
    try:
        report = demo.run()
    except Exception as exc:
        report["error"] = str(exc)
        raise DemoError(f"{demo.steps[-1]['step'] if demo.steps else 'setup'}: {exc}") from exc
    finally:
        demo.close()
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report
