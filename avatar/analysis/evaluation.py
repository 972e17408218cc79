"""Accuracy evaluation over labeled data sets (used by `avatar eval …` and the benchmarks)."""
from __future__ import annotations

import csv
from itertools import combinations
from pathlib import Path

import numpy as np

from avatar.analysis.face import FACE_MATCH_THRESHOLD, FaceError, face_distance, face_embedding, observe_image
from avatar.analysis.media import MediaError, decode_audio, decode_image
from avatar.analysis.voice import SPEAKER_MATCH_THRESHOLD, VoiceError, speaker_similarity, speaker_template

AUDIO_EXT = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm"}


def audio_of_file(path: Path) -> np.ndarray:
    """16 kHz mono float32 of an audio file. A file soundfile reads that is already at 16 kHz
    (LibriSpeech FLAC, WAV) is read directly, ~100× faster than starting the upload decoder's two
    ffmpeg processes; anything else goes through that decoder."""
    import soundfile as sf

    try:
        if sf.info(str(path)).samplerate == 16000:
            audio, _ = sf.read(str(path), dtype="float32", always_2d=True)
            return np.clip(audio.mean(axis=1), -1.0, 1.0)
    except RuntimeError:  # a format libsndfile does not know (LibsndfileError): ffmpeg reads it
        pass
    return decode_audio(path.read_bytes())


def face_template_of_file(path: Path) -> np.ndarray:
    """Template of the largest face in an image file (FaceError/MediaError if none)."""
    img = decode_image(path.read_bytes(), max_side=800)
    obs = observe_image(img)
    if obs is None:
        raise FaceError("no face found")
    return face_embedding(img, obs)


def eval_faces(pairs_csv: Path, images: Path, threshold: float = FACE_MATCH_THRESHOLD) -> dict:
    """Verification accuracy over `file_x,file_y,same` pairs. An image with no usable face makes
    every pair it is in a wrong answer."""
    with open(pairs_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"file_x", "file_y", "same"} <= set(rows[0]):
        raise ValueError("pairs file needs columns file_x,file_y,same")
    cache: dict[str, np.ndarray | None] = {}

    def template(name: str):
        if name not in cache:
            try:
                cache[name] = face_template_of_file(images / name)
            except (FaceError, MediaError, OSError):
                cache[name] = None
        return cache[name]

    correct = fa = fr = n_same = n_diff = 0
    failures = []
    for r in rows:
        same = str(r["same"]).strip() in {"1", "true", "True", "yes"}
        a, b = template(r["file_x"]), template(r["file_y"])
        n_same += same
        n_diff += not same
        if a is None or b is None:
            failures.append(r["file_x"] if a is None else r["file_y"])
            fr += same
            fa += not same
            continue
        match = face_distance(a, b) < threshold
        correct += match == same
        fa += match and not same
        fr += same and not match
    return {"accuracy": round(correct / len(rows), 4), "n": len(rows), "threshold": threshold,
            "far": round(fa / max(n_diff, 1), 4), "frr": round(fr / max(n_same, 1), 4),
            "no_face": sorted(set(failures))}


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold) for similarity scores (higher = more alike)."""
    best_gap, best_t, eer = 2.0, 0.0, 1.0
    for t in np.unique(np.concatenate([genuine, impostor])):
        frr = float(np.mean(genuine < t))
        far = float(np.mean(impostor >= t))
        if abs(frr - far) < best_gap:
            best_gap, best_t, eer = abs(frr - far), float(t), (frr + far) / 2
    return eer, best_t


def _audio_files(root: Path) -> list[Path]:
    """The audio files under root, sorted, following symlinked folders (a speaker folder is often a
    link into a corpus) but visiting each real folder once."""
    import os

    seen, out = set(), []
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        out += [Path(folder) / n for n in names if Path(n).suffix.lower() in AUDIO_EXT]
    return sorted(out)


def eval_voices(root: Path) -> dict:
    """Speaker-verification EER over all pairs of utterances. Each folder directly under root
    with ≥ 2 utterances is a speaker; a folder of one-utterance speakers (like `singles`, named
    SPEAKER-…) adds impostors."""
    files = _audio_files(Path(root))
    if not files:
        raise ValueError(f"no audio files under {root}")
    labels, templates = [], []
    for p in files:
        speaker = p.name.split("-")[0] if "-" in p.name else p.relative_to(root).parts[0]
        try:
            templates.append(speaker_template(audio_of_file(p)))
            labels.append(speaker)
        except (VoiceError, MediaError):
            continue
    genuine, impostor = [], []
    for i, j in combinations(range(len(labels)), 2):
        (genuine if labels[i] == labels[j] else impostor).append(speaker_similarity(templates[i], templates[j]))
    if not genuine:
        raise ValueError("need at least one speaker with two utterances")
    eer, thr = equal_error_rate(np.array(genuine), np.array(impostor))
    counts = {s: labels.count(s) for s in set(labels)}
    return {"eer": round(eer, 4), "speakers": len(counts), "utterances": len(labels), "threshold": round(thr, 4),
            "genuine_pairs": len(genuine), "impostor_pairs": len(impostor),
            "far_at_default": round(float(np.mean(np.array(impostor) >= SPEAKER_MATCH_THRESHOLD)), 4),
            "frr_at_default": round(float(np.mean(np.array(genuine) < SPEAKER_MATCH_THRESHOLD)), 4),
            "default_threshold": SPEAKER_MATCH_THRESHOLD}


def _code_of(text: str) -> str:
    """The digits of a transcript written as words ("three zero four") or numerals."""
    from avatar.analysis.speech_recognition import DIGIT_WORDS

    return "".join(DIGIT_WORDS.get(t, t if t.isdigit() else "") for t in text.lower().replace(",", " ").split())


def eval_codes(root: Path, seed: int = 0) -> dict:
    """The spoken-code check on STEM.wav + STEM.txt pairs (the digits read, as words), with the
    rule enrollment uses: each file's true code, one random other code and the true code with two
    digits changed (seeded). Raises ValueError for a folder with no usable pair."""
    import random
    import time

    from avatar.analysis.speech_recognition import Hearing
    from avatar.analysis.voice import verify_code

    pairs = [(w, w.with_suffix(".txt")) for w in sorted(Path(root).glob("*.wav")) if w.with_suffix(".txt").is_file()]
    if not pairs:
        raise ValueError(f"{root}: no STEM.wav with its STEM.txt")
    rng = random.Random(seed)  # noqa: S311 - reproducible draws of codes to try, not secrets
    n = accepted = fa_random = fa_two = 0
    every_two = [0, 0]  # tried, accepted
    refused, seconds = [], 0.0
    for wav, txt in pairs:
        code = _code_of(txt.read_text(errors="replace"))
        if len(code) < 3:
            raise ValueError(f"{txt}: no digits to read")
        try:
            audio = audio_of_file(wav)
        except MediaError as exc:
            raise ValueError(f"{wav}: {exc}") from exc
        other = "".join(rng.choice("0123456789") for _ in code)
        two = list(code)
        for i in rng.sample(range(len(code)), 2):
            two[i] = rng.choice([d for d in "0123456789" if d != two[i]])
        hearing = Hearing(audio)  # decoded once (twice if needed) for the three codes
        t = time.perf_counter()
        ok = verify_code(hearing, code)
        seconds += time.perf_counter() - t
        n += 1
        accepted += ok.ok
        if not ok.ok:
            refused.append({"file": wav.name, "expected": code, "heard": ok.recognized})
        fa_random += verify_code(hearing, other).ok
        fa_two += verify_code(hearing, "".join(two)).ok
        for changed in two_digits_changed(code):  # every one, on the same transcripts
            every_two[0] += 1
            every_two[1] += verify_code(hearing, changed).ok
    return {"n": n, "accepted": accepted, "false_accepts_random": fa_random, "false_accepts_two_changed": fa_two,
            "false_accept_rate_every_two_changed": round(every_two[1] / every_two[0], 4),
            "seconds_per_item": round(seconds / n, 3), "refused": refused}


def two_digits_changed(code: str):
    """Every code that differs from `code` in exactly two digits."""
    import itertools

    for i, j in itertools.combinations(range(len(code)), 2):
        for a, b in itertools.product("0123456789", repeat=2):
            if a != code[i] and b != code[j]:
                yield code[:i] + a + code[i + 1:j] + b + code[j + 1:]
