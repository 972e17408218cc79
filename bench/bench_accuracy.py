"""Accuracy figures on ../shared/data: face pairs, speaker EER, spoken-code verification (real
people reading their numbers on their own devices in digits_read/, and 8 kHz digit codes joined
from digits/, alone and after a read sentence), and passive liveness on real clips and still attacks.

    python bench/bench_accuracy.py [codes|flat|sync]   # codes: only the spoken-code figures;
                                                       # flat: the flat-picture cue in webcam framings;
                                                       # sync: lip sync on talking/ (own, others, shifted)
"""
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import DATA, emit

from avatar.analysis.challenge import AV_SYNC_MIN
from avatar.analysis.checks import passive_check_bytes
from avatar.analysis.evaluation import eval_codes, eval_faces, eval_voices, two_digits_changed
from avatar.analysis.face import observe_image
from avatar.analysis.liveness import (
    PLANAR_RESIDUAL_MIN,
    SAMPLE_FPS,
    SYNC_FPS,
    lip_sync,
    mouth_track,
    planar_residual,
    track,
)
from avatar.analysis.media import MediaFile, decode_clip
from avatar.analysis.speech_recognition import Hearing
from avatar.analysis.voice import edit_distance, verify_code
from avatar.demo.media import (
    code_audio,
    encode_frames,
    moved_still,
    native_frames,
    read_lead,
    read_rgb,
    still_to_video,
    webcam_framing,
)


def spoken_codes(n: int = 30, statement: bool = False) -> dict:
    """Codes joined from single-digit recordings; with statement, each is read after a sentence
    and verified as the end of a statement."""
    import time

    rng = np.random.default_rng(1)
    hits = fa_random = fa_near = 0
    all_near = [0, 0]  # tried, accepted
    seconds = 0.0
    for k in range(n):
        code = "".join(str(d) for d in rng.integers(0, 10, 6))
        audio = code_audio(DATA, code, ["george", "jackson", "lucas"][k % 3], rng)
        if statement:
            audio = np.concatenate([read_lead(DATA, rng), audio])
        hearing = Hearing(audio)
        t = time.perf_counter()
        hits += verify_code(hearing, code).ok
        seconds += time.perf_counter() - t
        other = "".join(str(d) for d in rng.integers(0, 10, 6))
        fa_random += verify_code(hearing, other).ok and edit_distance(other, code) > 3
        near = list(code)
        for pos in rng.choice(6, 2, replace=False):
            near[pos] = str((int(near[pos]) + int(rng.integers(1, 10))) % 10)
        fa_near += verify_code(hearing, "".join(near)).ok
        for changed in two_digits_changed(code):  # every one (1215), on the same transcripts
            all_near[0] += 1
            all_near[1] += verify_code(hearing, changed).ok
    return {"codes": n, "true_accept_rate": round(hits / n, 3), "false_accept_random_code": round(fa_random / n, 3),
            "false_accept_two_digits_changed": round(fa_near / n, 3),
            "false_accept_every_two_digits_changed": round(all_near[1] / all_near[0], 4),
            "seconds_per_item": round(seconds / n, 3)}


def passive() -> dict:
    real = {p.stem: passive_check_bytes(p.read_bytes()) for p in sorted((DATA / "video").glob("*.mp4"))}
    tmp = Path(tempfile.mkdtemp())
    attacks = {}
    for still in sorted((DATA / "stills").glob("*.jpg")):
        attacks[f"{still.stem}:image"] = passive_check_bytes(still.read_bytes())
        for motion in ("static", "pan", "zoom", "shake", "print"):
            clip = still_to_video(read_rgb(still), tmp / f"{still.stem}-{motion}.mp4", seconds=5, motion=motion)
            attacks[f"{still.stem}:{motion}"] = passive_check_bytes(clip.read_bytes())
    return {
        "real_clips": len(real), "real_live": sum(r.live for r in real.values()),
        "real_min_planar_residual": min(r.details.get("planar_residual") or 0 for r in real.values()),
        "attacks": len(attacks), "attacks_refused": sum(not r.live for r in attacks.values()),
        "attack_max_planar_residual": max(r.details.get("planar_residual") or 0 for r in attacks.values()
                                          if "planar_residual" in r.details),
        "accepted_attacks": [k for k, r in attacks.items() if r.live],
    }


FRAMINGS = {"own": None, "640x480 face 20%": ((640, 480), 0.2), "640x480 face 40%": ((640, 480), 0.4),
            "1280x720 face 20%": ((1280, 720), 0.2), "1280x720 face 40%": ((1280, 720), 0.4)}


def _planar(path: Path) -> tuple[float, float | None]:
    frames, _, _ = decode_clip(path.read_bytes(), fps=SAMPLE_FPS, max_side=640)
    sig = track(frames)
    return sig.present_ratio, planar_residual(frames, sig)


def flat_picture() -> dict:
    """The flat-picture cue (planar_residual) on every real clip of talking/ and video/ in its own
    framing and in webcam framings (H.264 CRF 28, sensor noise), and on photos of them (their first
    frame) held up to the webcam: panned, shaken, tilted like a print; plus the stills' attacks."""
    tmp = Path(tempfile.mkdtemp())
    bona: dict[str, list] = {name: [] for name in FRAMINGS}
    attacks: dict[str, list] = {}
    clips = sorted((DATA / "talking").glob("*.mp4")) + sorted((DATA / "video").glob("*.mp4"))
    for k, clip in enumerate(clips):
        frames = native_frames(clip)[:250]  # 10 s
        box = observe_image(frames[0]).box
        for name, framing in FRAMINGS.items():
            path = clip
            if framing:
                path = encode_frames(webcam_framing(frames, box, *framing, seed=k), tmp / f"{clip.stem}-{k}.mp4", crf=28)
            bona[name].append((clip.stem, *_planar(path)))
        if k % 3 == 0:
            for motion in ("pan", "shake", "print"):
                for name in ("640x480 face 20%", "1280x720 face 20%"):
                    photo = webcam_framing(frames[:1], box, *FRAMINGS[name], noise=0)[0]
                    path = encode_frames(moved_still(photo, 3, motion=motion, seed=k), tmp / f"photo-{k}.mp4", crf=28)
                    attacks.setdefault(f"photo {motion}, {name}", []).append((clip.stem, *_planar(path)))
    for still in sorted((DATA / "stills").glob("*.jpg")):
        for motion in ("static", "pan", "zoom", "shake", "print"):
            path = still_to_video(read_rgb(still), tmp / f"{still.stem}.mp4", seconds=5, motion=motion)
            attacks.setdefault(f"still {motion}", []).append((still.stem, *_planar(path)))

    def figures(items, refuse: bool) -> dict:
        values = [v for _, _, v in items if v is not None]
        passed = [v is not None and v >= PLANAR_RESIDUAL_MIN for _, _, v in items]
        return {"n": len(items), ("refused" if refuse else "taken_for_flat"): passed.count(False),
                "min": round(min(values), 2) if values else None, "max": round(max(values), 2) if values else None,
                "face_found_min": round(min(p for _, p, _ in items), 2)}

    return {"threshold": PLANAR_RESIDUAL_MIN,
            "bona_fide": {name: figures(items, refuse=False) for name, items in bona.items()},
            "attacks": {name: figures(items, refuse=True) for name, items in attacks.items()}}


def lip_sync_figures() -> dict:
    """lip_sync() on the mouth tracked at SYNC_FPS (as enrollment uses it) on each clip of talking/
    with its own audio, with another person's audio, with the same person saying another sentence,
    and with its own audio delayed and advanced by 0.3 s; the ROC area of own audio against all the
    others, and how many of each the threshold passes."""
    clips = {}
    for clip in sorted((DATA / "talking").glob("*.mp4")):
        with MediaFile(clip.read_bytes()) as mf:
            frames, audio = mf.clip(SAMPLE_FPS, max_side=640)
            clips[clip.stem] = (mouth_track(mf.iter_frames(SYNC_FPS, 640), track(frames), 0.0, 10.0), audio)
    names = sorted(clips)
    s1 = [n for n in names if "_s1_" in n]
    scores: dict[str, list[float]] = {"own": [], "another_person": [], "same_person_other_sentence": [],
                                      "delayed_0.3s": [], "advanced_0.3s": []}
    shift = int(0.3 * 16000)
    for n in names:
        sig, audio = clips[n]
        scores["own"].append(lip_sync(sig, audio, 16000)["corr"])
        others = [o for o in names if (o in s1) != (n in s1)][:4]
        scores["another_person"] += [lip_sync(sig, clips[o][1][: audio.size], 16000)["corr"] for o in others]
        if n in s1:
            same = [o for o in s1 if o != n][:4]
            scores["same_person_other_sentence"] += [lip_sync(sig, clips[o][1][: audio.size], 16000)["corr"]
                                                     for o in same]
        pad = np.zeros(shift, np.float32)
        scores["delayed_0.3s"].append(lip_sync(sig, np.concatenate([pad, audio[:-shift]]), 16000)["corr"])
        scores["advanced_0.3s"].append(lip_sync(sig, np.concatenate([audio[shift:], pad]), 16000)["corr"])
    negatives = np.array([v for k, vs in scores.items() if k != "own" for v in vs])
    auc = float(np.mean([(p > negatives).mean() + 0.5 * (p == negatives).mean() for p in scores["own"]]))
    return {"clips": len(names), "roc_auc_own_vs_others": round(auc, 3), "threshold": AV_SYNC_MIN,
            **{k: {"n": len(v), "min": round(min(v), 3), "median": round(float(np.median(v)), 3),
                   "max": round(max(v), 3), "passing": sum(x >= AV_SYNC_MIN for x in v)} for k, v in scores.items()}}


def codes() -> dict:
    return {"digits_read": eval_codes(DATA / "digits_read"), "spoken_codes": spoken_codes(60),
            "spoken_codes_after_a_sentence": spoken_codes(60, statement=True)}


def main():
    if sys.argv[1:] == ["codes"]:
        emit("accuracy_codes", codes())
        return
    if sys.argv[1:] == ["flat"]:
        emit("accuracy_flat_picture", flat_picture())
        return
    if sys.argv[1:] == ["sync"]:
        emit("accuracy_lip_sync", lip_sync_figures())
        return
    emit("accuracy", {
        "faces": eval_faces(DATA / "faces/pairs.csv", DATA / "faces"),
        "voices": eval_voices(DATA / "voices"),
        **codes(),
        "passive_liveness": passive(),
        "flat_picture": flat_picture(),
        "lip_sync": lip_sync_figures(),
    })


if __name__ == "__main__":
    main()
