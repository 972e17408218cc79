"""Synthesis figures: offline speech real-time factor and speaker similarity gain on the shared
speakers, talking-head frames per second at 512×512, end-to-end seconds for a ~10 s script.
Runs the backends through a real grant minted for the benchmark (no database needed)."""
from __future__ import annotations

import os
import time
from datetime import datetime

import numpy as np
from _common import DATA, emit

SCRIPT_10S = ("Hello everyone, this is a short message for my family and my friends. I hope you are all well, "
              "that the weather is kind to you, and that I will see every one of you again very soon.")


def _grant(voice, face, modality, footage=None):
    from avatar.synthesis.grant import _MINT, ConsentGrant, Likeness

    return ConsentGrant(_MINT, requester_id=0, subject_id=0, subject_pseudonym="bench", consent_id=0,
                        modality=modality, purpose="personal", issued_at=datetime.now(), check=lambda: None,
                        load=lambda m: Likeness(voice, face, footage))


def main() -> None:
    from avatar.analysis.face import aligned_face, observe_image
    from avatar.analysis.media import decode_audio, decode_image
    from avatar.analysis.voice import speaker_similarity, speaker_template
    from avatar.synthesis.render import render_video
    from avatar.synthesis.speech.offline import OfflineSpeech, adapt, espeak, voice_model
    from avatar.synthesis.video.example_based import ExampleTalkingHead
    from avatar.synthesis.video.offline import MeshTalkingHead

    speakers = sorted(p for p in (DATA / "voices").iterdir() if p.is_dir() and p.name.isdigit())
    plain_sims, adapted_sims, rtfs = [], [], []
    for spk in speakers:
        files = sorted(spk.glob("*.flac"))
        ref = np.concatenate([decode_audio(f.read_bytes()) for f in files[:3]])
        held = speaker_template(np.concatenate([decode_audio(f.read_bytes()) for f in files[3:6]]))
        plain = espeak(SCRIPT_10S)
        vm = voice_model(ref)
        t = time.perf_counter()
        y = adapt(espeak(SCRIPT_10S), vm)
        rtfs.append((time.perf_counter() - t) / (len(y) / 16000))
        plain_sims.append(speaker_similarity(speaker_template(plain), held))
        adapted_sims.append(speaker_similarity(speaker_template(y), held))
    emit("speech_offline", {
        "cpu_threads": os.cpu_count(), "speakers": len(speakers),
        "similarity_plain_espeak": [round(v, 3) for v in plain_sims],
        "similarity_adapted": [round(v, 3) for v in adapted_sims],
        "mean_plain": round(float(np.mean(plain_sims)), 3), "mean_adapted": round(float(np.mean(adapted_sims)), 3),
        "rtf_adaptation_median": round(float(np.median(rtfs)), 3)})

    img = decode_image((DATA / "faces/img1.jpg").read_bytes())
    face = aligned_face(img, observe_image(img))
    voice = np.concatenate([decode_audio(f.read_bytes()) for f in sorted((DATA / "voices/1688").glob("*.flac"))[:3]])
    footage = (DATA / "talking/grid_s1_lrbe9a.mp4").read_bytes()
    for name, head, grant in [("talking_head_offline", ExampleTalkingHead(), _grant(voice, face, "video", footage)),
                              ("talking_head_picture_only", MeshTalkingHead(), _grant(voice, face, "video"))]:
        t0 = time.perf_counter()
        speech = OfflineSpeech().synthesize(grant, SCRIPT_10S)
        t_speech = time.perf_counter() - t0
        t = time.perf_counter()
        frames = list(head.frames(grant, speech))  # the footage analysed here, as the first clip of a likeness
        t_frames = time.perf_counter() - t
        t = time.perf_counter()
        data = render_video(iter(frames), speech, "0badc0de", bytes(32))
        t_render = time.perf_counter() - t
        emit(name, {
            "backend": head.name, "speech_seconds": round(speech.seconds, 2),
            "speech_rtf": round(t_speech / speech.seconds, 3), "frames": len(frames), "size": 512,
            "animation_fps_with_footage_analysis": round(len(frames) / t_frames, 1),
            "label_watermark_encode_fps": round(len(frames) / t_render, 1),
            "end_to_end_seconds": round(time.perf_counter() - t0, 2), "mp4_bytes": len(data)})


if __name__ == "__main__":
    main()
