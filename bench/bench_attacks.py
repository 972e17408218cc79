"""Presentation-attack corpus for the enrollment capture check, with ISO/IEC 30107-3 style figures.

Builds from ../shared/data, for several issued challenges (plans and codes that the recorded footage
of one man, d12, can answer):
- bona fide: the man's footage answering the challenge, the code spoken by each of the 3 digit speakers
  (a digit that recurs in the code is another take, as when a person says it again);
- attacks against him: his photo (a video frame) as a still video panned, zoomed, as a printed photo
  tilted in a hand; his real (earlier) video played on a screen (perspective, moiré, glare: see
  tests/media_factory.screen_replay); another
  person's real clip; a replay of an earlier passing capture for a new challenge; the right answer
  with its frames shuffled in 0.4 s blocks; the right video with another speaker's digits read
  off the mouth openings, once as a live speaker would say them (a new take for a recurring digit)
  and once pieced together from one recording per digit; the right video with the code in
  synthetic speech (the offline espeak-ng + pyworld backend) on the mouth openings.
Runs the server's content check (avatar.analysis.challenge.verify_capture) on each; the session
layer's single-use nonce and freshness checks, which also stop replays, are not part of it. JSON:
APCER per attack type, BPCER, with counts, and the hint of every wrongly accepted item."""
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
from avatar.analysis.liveness import SAMPLE_FPS  # noqa: E402
from avatar.analysis.media import MediaFile  # noqa: E402
from avatar.demo.footage import FOOTAGE, FOOTAGE_ACTIONS, SR, assemble_capture, digit_audio  # noqa: E402
from avatar.domain.challenges import draw, schedule  # noqa: E402
from tests.media_factory import encode_frames, frames_of, screen_replay, still_to_video  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
N_CHALLENGES = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def challenges(n: int) -> list[tuple[dict, str]]:
    out = []
    for seed in range(2000):
        actions, code = draw(random.Random(seed))
        if set(actions) <= FOOTAGE_ACTIONS:
            out.append((schedule(actions), code))
        if len(out) == n:
            return out
    raise RuntimeError("not enough fitting challenges")


def check(path: Path, plan: dict, code: str) -> dict:
    with MediaFile(path.read_bytes()) as mf:
        frames, audio = mf.clip(SAMPLE_FPS, max_side=640)
    v = verify_capture(frames, audio, plan, code)
    voice = v.checks.get("voice") or {}
    return {"passed": v.passed, "hint": v.hint, "av_sync": (voice.get("av_sync") or {}).get("corr"),
            "repeated_sound": voice.get("repeated_sound"),
            "screen_pattern": (v.checks.get("presentation_attack") or {}).get("screen_pattern")}


def synthetic_digits() -> dict[str, np.ndarray]:
    from scipy.signal import resample_poly

    from avatar.synthesis.speech.offline import WORK_SR, adapt, espeak, voice_model

    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    target = voice_model(np.concatenate([digit_audio(DATA / "digits", str(d), "jackson", take=1) for d in range(10)]))
    out = {}
    for d, word in enumerate(words):
        y = adapt(espeak(word), target)
        y = resample_poly(y, SR, WORK_SR).astype(np.float32)
        out[str(d)] = y / (np.abs(y).max() + 1e-6) * 0.6
    return out


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="avatar-attacks-"))
    footage, digits = DATA / FOOTAGE, DATA / "digits"
    raw = frames_of(footage, fps=25, size=512)
    other = frames_of(DATA / "video/d10.mp4", fps=25, size=512)
    synth = synthetic_digits()
    bona, attacks = [], {}

    def attack(kind: str, path: Path, plan: dict, code: str):
        attacks.setdefault(kind, []).append({"file": path.name, **check(path, plan, code)})

    plans = challenges(N_CHALLENGES)
    for k, (plan, code) in enumerate(plans):
        good = []
        for speaker in ("george", "jackson", "lucas"):
            path = assemble_capture(plan, code, footage, digits, tmp / f"bona-{k}-{speaker}.mp4", speaker=speaker)
            bona.append({"file": path.name, **check(path, plan, code)})
            good.append(path)
        audio = good[0].with_suffix(".wav")  # the right words at the right times
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
            earlier_plan, earlier_code = plans[(k + 1) % len(plans)]
            earlier = assemble_capture(earlier_plan, earlier_code, footage, digits, tmp / f"earlier-{k}.mp4")
            attack("replay_of_earlier_capture", earlier, plan, code)
        frames = frames_of(good[0], fps=25, size=512)
        blocks = [frames[i:i + 10] for i in range(0, len(frames), 10)]
        random.Random(k).shuffle(blocks)
        attack("frame_shuffled", encode_frames([f for b in blocks for f in b], tmp / f"shuffled-{k}.mp4", 25,
                                               audio=audio), plan, code)
        # another speaker's digits read at an even pace over the statement, not on the lips: as a live
        # speaker would (every digit a different take) and pieced together from one recording per digit
        wav, _ = sf.read(audio, dtype="float32")
        for kind, fresh in (("other_speaker_audio", True), ("spliced_recordings", False)):
            dub = np.zeros_like(wav)
            at = int((plan["statement"]["start"] + 0.3) * SR)
            for j, d in enumerate(code):
                clip = digit_audio(digits, d, "lucas", occurrence=code[:j].count(d) if fresh else 0)
                dub[at: at + clip.size] += clip[: max(0, dub.size - at)]
                at += clip.size + int(0.25 * SR)
            sf.write(tmp / f"{kind}-{k}.wav", dub, SR)
            attack(kind, encode_frames(frames, tmp / f"{kind}-{k}.mp4", 25, audio=tmp / f"{kind}-{k}.wav"), plan, code)
        attack("synthetic_speech_code", assemble_capture(plan, code, footage, digits, tmp / f"synth-{k}.mp4",
                                                         digit_clips=synth), plan, code)
    per_type = {kind: {"attempts": len(items), "accepted": sum(i["passed"] for i in items),
                       "apcer": round(sum(i["passed"] for i in items) / len(items), 3)} for kind, items in attacks.items()}
    print(json.dumps({
        "challenges": len(plans),
        "bona_fide": {"attempts": len(bona), "rejected": sum(not b["passed"] for b in bona),
                      "bpcer": round(sum(not b["passed"] for b in bona) / len(bona), 3),
                      "rejected_hints": [b["hint"] for b in bona if not b["passed"]]},
        "apcer_max": max(v["apcer"] for v in per_type.values()),
        "attacks": per_type,
        "accepted_attacks": [f"{kind}: {i['file']}" for kind, items in attacks.items() for i in items if i["passed"]],
        # per item, the cues a threshold decides: lip sync (refused under AV_SYNC_MIN = 0.15), moiré
        # (over SCREEN_PATTERN_MAX = 2.0), one recording used twice (over REPEATED_SOUND_MAX = 0.98)
        **{cue: {"bona_fide": [b[cue] for b in bona],
                 **{kind: [i[cue] for i in items] for kind, items in attacks.items()}}
           for cue in ("av_sync", "screen_pattern", "repeated_sound")},
    }, indent=1))


if __name__ == "__main__":
    main()
