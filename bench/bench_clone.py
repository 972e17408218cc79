"""Voice clone figures: the offline speech backend, given each speaker's enrolled speech through a real
grant, says TEXT; the clone is compared with that speaker's held-back speech and with the others'.

    python bench/bench_clone.py [--voices DIR] [--out OUT] [--text TEXT] [--more-texts] [--source kokoro|espeak]

DIR holds one folder per speaker of 16 kHz FLAC/WAV utterances: the first 3 files (sorted) are the
enrolled speech, the rest are never given to the backend (held back, to judge by). Writes
OUT/<speaker>.wav (24 kHz) and OUT/report.json, and prints the report's summary as JSON:
- similarity: Resemblyzer cosine of the clone's embedding to the mean embedding of the speaker's
  held-back utterances (and to every other speaker's), with whether the own speaker is the nearest;
- wer: word error rate of Whisper tiny.en (the spoken-code recognizer) on the clone against TEXT;
- with a folder `singles` of one utterance each of other speakers (impostors, never enrolled): the
  clone's highest similarity to any of them;
- seconds and real-time factor of synthesis. rtf: a voice's first use in a process (its caches
  emptied, as in a new worker) given the analysis enrollment stores with the voice profile
  (speech/voice_analysis.py; enrollment_analysis_seconds: what making it took); rtf_warm: again;
  rtf_without_stored_analysis: the first use of a profile from before it was stored, which
  analyses, transcribes and aligns the enrolled speech itself. Kokoro's style choice reported
  apart (its first use in a process hears every style once).
--more-texts also says MORE_TEXTS (two other sentences, of other sounds: OUT/<speaker>-2.wav, -3.wav)
and reports similarity and WER over all the texts: one sentence flatters a voice tuned on it (timings
are of TEXT alone).
--source picks what the offline voice starts from (AVATAR_SPEECH_SOURCE): espeak (the default) or
kokoro; both are adapted to the enrolled voice by WORLD the same way."""
from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile as sf
from _common import DATA, emit

IMPOSTORS = "singles"  # a folder of one utterance each of other speakers (shared/data/voices has 125)
TEXT = ("Thank you for calling. I will be away from my desk this afternoon, but please leave a short message "
        "with your name and number, and I will get back to you as soon as I can.")
MORE_TEXTS = ("The weather report says it will rain over the hills tonight, so bring a warm coat and an umbrella "
              "when you come to visit us.",
              "My brother bought a bicycle at the market on Monday, and he rode it all the way home along the "
              "river path.")


def _grant(voice, analysis: bytes | None = None):
    from avatar.synthesis.grant import _MINT, ConsentGrant, Likeness

    return ConsentGrant(_MINT, requester_id=0, subject_id=0, subject_pseudonym="bench", consent_id=0,
                        modality="speech", purpose="personal", issued_at=datetime.now(), check=lambda: None,
                        load=lambda m: Likeness(voice, None, voice_analysis=analysis))


def _embedding(audio: np.ndarray) -> np.ndarray:
    """The utterance's Resemblyzer vector: the mean of its speaker template's windows, unit length."""
    from avatar.analysis.voice import speaker_template, template_vector

    return template_vector(speaker_template(audio))


def _judged(audio16: np.ndarray, held: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, float], str]:
    """A clone's Resemblyzer vector, its similarity to each speaker's held-back speech, and what
    Whisper hears in it."""
    from avatar.analysis.speech_recognition import transcribe

    e = _embedding(audio16)
    return e, {other: round(float(e @ h), 3) for other, h in held.items()}, transcribe(audio16).text


def word_error_rate(reference: str, heard: str) -> float:
    from avatar.analysis.speech_recognition import spoken_words
    from avatar.analysis.voice import edit_distance

    ref, hyp = spoken_words(reference), spoken_words(heard)
    return edit_distance(ref, hyp) / max(1, len(ref))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--voices", type=Path, default=DATA / "voices")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "clone")
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--more-texts", action="store_true", help="also say MORE_TEXTS and report over all texts")
    ap.add_argument("--source", choices=["espeak", "kokoro"], default="espeak")
    args = ap.parse_args()

    from scipy.signal import resample_poly

    from avatar.analysis.media import decode_audio
    from avatar.synthesis.speech import ReferenceCache
    from avatar.synthesis.speech.offline import OfflineSpeech, analysed_voice, nearest_style

    speakers = sorted(p for p in args.voices.iterdir() if p.is_dir() and p.name != IMPOSTORS)
    if not speakers:
        raise SystemExit(f"{args.voices}: no speaker folders")
    args.out.mkdir(parents=True, exist_ok=True)
    held, enrolled = {}, {}
    for spk in speakers:
        files = sorted(f for f in spk.iterdir() if f.suffix.lower() in (".flac", ".wav"))
        if len(files) < 4:
            raise SystemExit(f"{spk}: needs at least 4 utterances (3 enrolled, 1 or more held back)")
        enrolled[spk.name] = np.concatenate([decode_audio(f.read_bytes()) for f in files[:3]])
        emb = np.mean([_embedding(decode_audio(f.read_bytes())) for f in files[3:]], axis=0)
        held[spk.name] = emb / np.linalg.norm(emb)
    impostors = [_embedding(decode_audio(f.read_bytes())) for f in sorted((args.voices / IMPOSTORS).glob("*"))
                 if f.suffix.lower() in (".flac", ".wav")] if (args.voices / IMPOSTORS).is_dir() else []

    rows = {}
    backend = OfflineSpeech(args.source)
    for name, voice in enrolled.items():
        t = time.perf_counter()
        if args.source == "kokoro":
            nearest_style(voice)  # the styles' voices are heard once per process, then one comparison
        style_s = time.perf_counter() - t
        ReferenceCache.forget_all()  # each voice's first use, as in a new worker process
        t = time.perf_counter()
        backend.synthesize(_grant(voice), args.text)  # with no stored analysis (profiles from before it)
        unprimed_seconds = time.perf_counter() - t
        ReferenceCache.forget_all()
        t = time.perf_counter()
        analysis = analysed_voice(voice)  # what enrollment stores with the voice profile
        analysis_s = time.perf_counter() - t
        ReferenceCache.forget_all()
        t = time.perf_counter()
        speech = backend.synthesize(_grant(voice, analysis), args.text)  # a generation after enrollment
        audio24, sr = speech.audio, speech.sr
        seconds = time.perf_counter() - t
        t = time.perf_counter()
        backend.synthesize(_grant(voice, analysis), args.text)  # again: what was built from this voice is kept
        warm_seconds = time.perf_counter() - t
        sf.write(args.out / f"{name}.wav", audio24, sr)
        clone = resample_poly(audio24, 16000, sr).astype(np.float32)
        e, sims, heard = _judged(clone, held)
        others = []
        for k, text in enumerate(MORE_TEXTS if args.more_texts else (), start=2):
            more = backend.synthesize(_grant(voice, analysis), text)
            sf.write(args.out / f"{name}-{k}.wav", more.audio, more.sr)
            _, more_sims, heard_more = _judged(resample_poly(more.audio, 16000, more.sr).astype(np.float32), held)
            others.append({"text": text, "similarity": more_sims[name],
                           "own_is_nearest": max(more_sims, key=more_sims.get) == name,
                           "wer": round(word_error_rate(text, heard_more), 3), "heard": heard_more})
        rows[name] = {
            "similarity": sims[name],
            "nearest_other": max((v, k) for k, v in sims.items() if k != name)[1],
            "nearest_other_similarity": max(v for k, v in sims.items() if k != name),
            "own_is_nearest": max(sims, key=sims.get) == name,
            "similarity_to_each": sims,
            "impostors": len(impostors),
            "nearest_impostor_similarity": round(float(max(e @ i for i in impostors)), 3) if impostors else None,
            "wer": round(word_error_rate(args.text, heard), 3), "heard": heard,
            "audio_seconds": round(len(audio24) / sr, 2), "synthesis_seconds": round(seconds, 2),
            "rtf": round(seconds / (len(audio24) / sr), 3), "rtf_warm": round(warm_seconds / (len(audio24) / sr), 3),
            "rtf_without_stored_analysis": round(unprimed_seconds / (len(audio24) / sr), 3),
            "enrollment_analysis_seconds": round(analysis_s, 2),
            "enrolled_seconds": round(voice.size / 16000, 1),
            "stored_analysis_mb": round(len(analysis or b"") / 1e6, 1),
            "style_choice_seconds": round(style_s, 2),
            "more_texts": others}
    report = {"source": args.source, "text": args.text, "speakers": rows}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    sims = [r["similarity"] for r in rows.values()]
    over_texts = {}
    if args.more_texts:
        every = [(r["similarity"], r["wer"], r["own_is_nearest"]) for r in rows.values()]
        every += [(o["similarity"], o["wer"], o["own_is_nearest"]) for r in rows.values() for o in r["more_texts"]]
        over_texts = {"all_texts": {
            "similarity_min": min(x[0] for x in every), "similarity_mean": round(float(np.mean([x[0] for x in every])), 3),
            "similarity_mean_by_speaker": {k: round(float(np.mean([r["similarity"]] + [o["similarity"] for o in
                                                                                      r["more_texts"]])), 3)
                                           for k, r in rows.items()},
            "own_nearest": sum(x[2] for x in every), "clones": len(every),
            "wer_mean": round(float(np.mean([x[1] for x in every])), 3), "wer_max": max(x[1] for x in every)}}
    emit("clone", {"source": args.source, "similarity": {k: r["similarity"] for k, r in rows.items()},
                   "similarity_min": min(sims), "similarity_mean": round(float(np.mean(sims)), 3),
                   "own_nearest": sum(r["own_is_nearest"] for r in rows.values()), "speakers": len(rows),
                   "wer_mean": round(float(np.mean([r["wer"] for r in rows.values()])), 3),
                   "wer_max": max(r["wer"] for r in rows.values()),
                   "rtf_median": round(float(np.median([r["rtf"] for r in rows.values()])), 3),
                   "rtf_warm_median": round(float(np.median([r["rtf_warm"] for r in rows.values()])), 3),
                   "rtf_without_stored_analysis_median": round(float(np.median(
                       [r["rtf_without_stored_analysis"] for r in rows.values()])), 3),
                   "enrollment_analysis_seconds_median": round(float(np.median(
                       [r["enrollment_analysis_seconds"] for r in rows.values()])), 2),
                   "style_choice_seconds_median": round(float(np.median([r["style_choice_seconds"]
                                                                         for r in rows.values()])), 2),
                   **over_texts, "out": str(args.out)})


if __name__ == "__main__":
    main()
