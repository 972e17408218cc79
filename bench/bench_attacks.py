"""Presentation-attack corpus for the enrollment capture check, with ISO/IEC 30107-3 style figures.

Builds from ../shared/data, for several issued challenges (plans that the recorded footage of one man,
d12, can answer):
- bona fide: real people reading digits on their own phones and laptops (digits_read/, 25 people, one
  unbroken recording each), over the man's footage answering the actions and opening his mouth wherever
  the reading is voiced; the issued code is the last six digits read (the four before it stand for
  the statement's words, whose digits are free). Every reader is one bona fide attempt;
- attacks against him (the code of the first readers): his photo (a video frame) as a still video
  panned, zoomed, as a printed photo tilted in a hand; his real (earlier) video played on a screen
  (perspective, moiré, glare: see avatar/demo/media.screen_replay); another person's real clip; a
  replay of an earlier passing capture for a new challenge; the right answer with its frames shuffled in
  0.4 s blocks; the code read by a real person over the man's lips moving to another reading (another
  speaker's digits over the right face); the code pieced together from one recording per digit
  (digits/); the code in synthetic speech (the offline espeak-ng + pyworld backend) on the mouth
  openings;
- this product's own generators against its door (issue 18): the man's real footage answering the
  actions, then our talking head of him (the offline default: made of his footage) saying the
  statement in his cloned voice, as our renderer delivers it (visible label, watermarks),
  own_head_cloned_voice; the same with the label cut off,
  scaled to 360 px and re-encoded, own_output_weakened; his real footage with the statement read by a
  clone of his voice without our mark (as if stripped), the lips following it, real_footage_cloned_voice.
  The clones alternate between the espeak-ng and Kokoro sources of the offline voice.
Runs what the server runs on a capture: this installation's watermark detectors (a mark refuses;
avatar.domain.verification.marks_in, with the bench's own key) and the content check
(avatar.analysis.challenge.verify_capture); the session layer's single-use nonce and freshness
checks, which also stop replays, are not part of it. JSON: APCER per attack type (and what the content
check alone accepts), BPCER, with counts, and the hint of every wrongly accepted item or refused
bona fide attempt."""
from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avatar.analysis.challenge import verify_capture  # noqa: E402
from avatar.analysis.liveness import SAMPLE_FPS, SYNC_FPS  # noqa: E402
from avatar.analysis.media import MediaFile  # noqa: E402
from avatar.demo.footage import FOOTAGE, FOOTAGE_ACTIONS, SR, assemble_capture, digit_audio  # noqa: E402
from avatar.demo.media import (  # noqa: E402
    encode_frames,
    frames_of,
    label_cropped,
    screen_replay,
    still_to_video,
)
from avatar.domain.challenges import draw, schedule  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
N_CHALLENGES = int(sys.argv[1]) if len(sys.argv) > 1 else 3
# `own` as the second argument: only our own generators' attacks (their bona fide captures are built,
# not scored), a few minutes instead of half an hour
ONLY_OWN = sys.argv[2:3] == ["own"]


def challenges(n: int) -> list[dict]:
    """The first n plans of seeded challenges whose actions the footage can answer."""
    out = []
    for seed in range(2000):
        actions, _ = draw(random.Random(seed))
        if set(actions) <= FOOTAGE_ACTIONS:
            out.append(schedule(actions))
        if len(out) == n:
            return out
    raise RuntimeError("not enough fitting challenges")


KEY = bytes(range(32))  # the bench installation's watermark key


def check(path: Path, plan: dict, code: str) -> dict:
    from avatar.domain.verification import marks_in

    with MediaFile(path.read_bytes()) as mf:
        marked = sorted(kind for kind, mark in marks_in(mf, KEY).items() if mark and mark["found"])
        frames, audio = mf.clip(SAMPLE_FPS, max_side=640)
        v = verify_capture(frames, audio, plan, code, mf.iter_frames(SYNC_FPS, 640))
    voice = v.checks.get("voice") or {}
    return {"passed": v.passed and not marked, "content_passed": v.passed, "marked": marked, "hint": v.hint,
            "synthetic_speech": (voice.get("synthetic_speech") or {}).get("score"),
            "av_sync": (voice.get("av_sync") or {}).get("corr"),
            "code_heard": (v.checks.get("code") or {}).get("recognized"), "failures": v.failures,
            "repeated_sound": voice.get("repeated_sound"),
            "screen_pattern": (v.checks.get("presentation_attack") or {}).get("screen_pattern")}


def synthetic_digits() -> dict[str, np.ndarray]:
    from scipy.signal import resample_poly

    from avatar.analysis.speech_recognition import DIGIT_NAMES
    from avatar.synthesis.speech.offline import WORK_SR, adapt, espeak, voice_model

    target = voice_model(np.concatenate([digit_audio(DATA / "digits", str(d), "jackson", take=1) for d in range(10)]))
    out = {}
    for d, word in enumerate(DIGIT_NAMES):
        y = adapt(espeak(word), target)
        y = resample_poly(y, SR, WORK_SR).astype(np.float32)
        out[str(d)] = y / (np.abs(y).max() + 1e-6) * 0.6
    return out


def _the_man(footage: Path):
    """A grant for the footage's man: his face (the frame enrollment would keep) and a voice to clone
    (the footage holds too little of his own speech for the offline voice: a LibriSpeech speaker's,
    voices/1688, stands in), as the product's generators would be given them."""
    from datetime import datetime

    from avatar.analysis.challenge import best_frames
    from avatar.analysis.evaluation import audio_of_file
    from avatar.analysis.face import aligned_face
    from avatar.analysis.liveness import track
    from avatar.analysis.voice import voice_activity, voiced_audio
    from avatar.synthesis.grant import _MINT, ConsentGrant, Likeness

    with MediaFile(footage.read_bytes()) as mf:
        frames, _ = mf.clip(SAMPLE_FPS, max_side=512)
    sig = track(frames)
    k = best_frames(sig, 1)[0]
    voice = np.concatenate([audio_of_file(f) for f in sorted((DATA / "voices/1688").glob("*.flac"))[:3]])
    # what enrollment keeps of him: his face, the voice, and his footage (the talking head is made of it)
    likeness = Likeness(voiced_audio(voice, voice_activity(voice)), aligned_face(frames.images[k], sig.observations[k]),
                        footage.read_bytes())
    return ConsentGrant(_MINT, requester_id=0, subject_id=0, subject_pseudonym="bench", consent_id=0,
                        modality="video", purpose="personal", issued_at=datetime.now(), check=lambda: None,
                        load=lambda m: likeness)


def own_output_capture(good: Path, plan: dict, code: str, grant, source: str, out: Path, k: int) -> Path:
    """The real capture's frames and sound up to the statement prompt, then our talking head saying
    the statement (with the code) in the cloned voice, as render_video delivers it."""
    from avatar.domain.challenges import statement_text
    from avatar.synthesis.render import render_video
    from avatar.synthesis.speech.offline import OfflineSpeech
    from avatar.synthesis.video import get_backend

    speech = OfflineSpeech(source).synthesize(grant, statement_text("Sam Doe", "avatar", code))
    ours = out.with_name(out.stem + "-ours.mp4")
    ours.write_bytes(render_video(get_backend("offline").frames(grant, speech), speech, f"{k + 1:08x}", KEY))
    real, ours_frames = frames_of(good, fps=25, size=512), frames_of(ours, fps=25, size=512)
    head = int(plan["statement"]["start"] * 25)
    total = len(real)
    video = (real[:head] + ours_frames + [ours_frames[-1]] * total)[:total]
    real_audio, _ = sf.read(good.with_suffix(".wav"), dtype="float32")
    with MediaFile(ours.read_bytes()) as mf:
        said = mf.audio()
    audio = real_audio.copy()
    at = head * SR // 25
    audio[at:] = 0.0
    audio[at: at + said.size] = said[: audio.size - at]
    sf.write(out.with_suffix(".wav"), audio, SR)
    return encode_frames(video, out, 25, audio=out.with_suffix(".wav"))


def cloned_reading(grant, code: str, source: str) -> np.ndarray:
    """The statement read by the offline voice's clone (unmarked), 16 kHz, peak 0.6."""
    from scipy.signal import resample_poly

    from avatar.domain.challenges import statement_text
    from avatar.synthesis.speech.offline import OfflineSpeech

    speech = OfflineSpeech(source).synthesize(grant, statement_text("Sam Doe", "avatar", code))
    y = resample_poly(speech.audio, SR, speech.sr).astype(np.float32)
    return y / (np.abs(y).max() + 1e-6) * 0.6


def readings() -> list[tuple[str, np.ndarray, str]]:
    """digits_read/: each person's reading at 16 kHz, cut to its speech (0.2 s around the voice
    found), peak 0.6, and the digits read."""
    from avatar.analysis.evaluation import _code_of, audio_of_file
    from avatar.analysis.voice import voice_activity

    out = []
    for wav in sorted((DATA / "digits_read").glob("*.wav")):
        audio = audio_of_file(wav)
        voiced = voice_activity(audio)
        if voiced:
            audio = audio[max(0, int((voiced[0][0] - 0.2) * SR)): int((voiced[-1][1] + 0.2) * SR)]
        read = _code_of(wav.with_suffix(".txt").read_text())
        out.append((wav.stem, audio / (np.abs(audio).max() + 1e-6) * 0.6, read))
    return out


def own_attacks(k: int, plan: dict, code: str, good: dict, man, tmp: Path, attack) -> None:
    """This product's generators against its door (see the module): our head and clone as
    delivered, the same weakened, and the man's real footage with the clone reading the statement."""
    source = ("espeak", "kokoro")[k % 2]
    ours = own_output_capture(good[k], plan, code, man, source, tmp / f"ours-{k}.mp4", k)
    attack("own_head_cloned_voice", ours, plan, code)
    attack("own_output_weakened", label_cropped(ours, tmp / f"ours-weak-{k}.mp4", crf=30, audio_bitrate="64k"),
           plan, code)
    attack("real_footage_cloned_voice", assemble_capture(plan, code, DATA / FOOTAGE, DATA / "digits",
                                                         tmp / f"cloned-{k}.mp4",
                                                         reading=cloned_reading(man, code, source)), plan, code)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="avatar-attacks-"))
    footage, digits = DATA / FOOTAGE, DATA / "digits"
    raw = frames_of(footage, fps=25, size=512)
    other = frames_of(DATA / "video/d10.mp4", fps=25, size=512)
    synth = synthetic_digits()
    man = _the_man(footage)
    readers = readings()
    plans = challenges(N_CHALLENGES)
    bona, attacks = [], {}

    def attack(kind: str, path: Path, plan: dict, code: str):
        attacks.setdefault(kind, []).append({"file": path.name, **check(path, plan, code)})

    good = {}
    for r, (name, reading, read) in enumerate(readers[:len(plans)] if ONLY_OWN else readers):
        plan, code = plans[r % len(plans)], read[-6:]
        path = assemble_capture(plan, code, footage, digits, tmp / f"bona-{name}.mp4", reading=reading)
        if not ONLY_OWN:
            bona.append({"file": path.name, "seconds_read": round(reading.size / SR, 1), **check(path, plan, code)})
        good[r] = path
    for k, plan in enumerate(plans):
        if ONLY_OWN:
            own_attacks(k, plan, readers[k][2][-6:], good, man, tmp, attack)
            continue
        name, reading, read = readers[k]
        code = read[-6:]
        audio = good[k].with_suffix(".wav")  # the right words at the right times
        seconds = plan["duration"]
        still = raw[40]
        for motion in ("pan", "zoom", "print"):
            attack(f"photo_{motion}", still_to_video(still, tmp / f"photo-{motion}-{k}.mp4", seconds=seconds,
                                                     motion=motion, audio=audio, seed=k), plan, code)
        n = int(seconds * 25)
        start = (k * 37) % max(1, len(raw) - n)
        replayed = screen_replay([raw[(start + i) % len(raw)] for i in range(n)], seed=k)
        attack("screen_replay", encode_frames(replayed, tmp / f"screen-{k}.mp4", 25, audio=audio), plan, code)
        attack("other_person", encode_frames([other[i % len(other)] for i in range(n)], tmp / f"other-{k}.mp4", 25,
                                             audio=audio), plan, code)
        if len(plans) > 1:  # a passing capture made for another challenge
            attack("replay_of_earlier_capture", good[(k + 1) % len(plans)], plan, code)
        frames = frames_of(good[k], fps=25, size=512)
        blocks = [frames[i:i + 10] for i in range(0, len(frames), 10)]
        random.Random(k).shuffle(blocks)
        attack("frame_shuffled", encode_frames([f for b in blocks for f in b], tmp / f"shuffled-{k}.mp4", 25,
                                               audio=audio), plan, code)
        # the code read by a real person, over the right face whose lips move to someone else's reading
        lips = readers[(k + len(plans)) % len(readers)][1]
        attack("other_speaker_audio", assemble_capture(plan, code, footage, digits, tmp / f"dubbed-{k}.mp4",
                                                       reading=reading, lips=lips), plan, code)
        # the code pieced together from one recording per digit, said at an even pace over the right face
        wav, _ = sf.read(audio, dtype="float32")
        dub = np.zeros_like(wav)
        at = int((plan["statement"]["start"] + 0.3) * SR)
        for d in code:
            clip = digit_audio(digits, d, "lucas")
            dub[at: at + clip.size] += clip[: max(0, dub.size - at)]
            at += clip.size + int(0.25 * SR)
        sf.write(tmp / f"spliced-{k}.wav", dub, SR)
        attack("spliced_recordings", encode_frames(frames, tmp / f"spliced-{k}.mp4", 25, audio=tmp / f"spliced-{k}.wav"),
               plan, code)
        attack("synthetic_speech_code", assemble_capture(plan, code, footage, digits, tmp / f"synth-{k}.mp4",
                                                         digit_clips=synth), plan, code)
        own_attacks(k, plan, code, good, man, tmp, attack)
    per_type = {kind: {"attempts": len(items), "accepted": sum(i["passed"] for i in items),
                       "apcer": round(sum(i["passed"] for i in items) / len(items), 3),
                       "content_check_accepted": sum(i["content_passed"] for i in items),
                       "marked": sum(bool(i["marked"]) for i in items)} for kind, items in attacks.items()}
    print(json.dumps({
        "challenges": len(plans),
        "bona_fide": {"attempts": len(bona), "rejected": sum(not b["passed"] for b in bona),
                      "bpcer": round(sum(not b["passed"] for b in bona) / max(1, len(bona)), 3),
                      "refused": [{k: b[k] for k in ("file", "seconds_read", "code_heard", "failures")}
                                  for b in bona if not b["passed"]]},
        "apcer_max": max(v["apcer"] for v in per_type.values()),
        "attacks": per_type,
        "accepted_attacks": [f"{kind}: {i['file']}" for kind, items in attacks.items() for i in items if i["passed"]],
        # per item, the cues a threshold decides: lip sync (refused under AV_SYNC_MIN = 0.15), moiré
        # (over SCREEN_PATTERN_MAX = 2.0), one recording used twice (over REPEATED_SOUND_MAX = 0.98),
        # generated speech (synthetic_speech.REFUSE_AT)
        **{cue: {"bona_fide": [b[cue] for b in bona],
                 **{kind: [i[cue] for i in items] for kind, items in attacks.items()}}
           for cue in ("av_sync", "screen_pattern", "repeated_sound", "synthetic_speech")},
    }, indent=1))


if __name__ == "__main__":
    main()
