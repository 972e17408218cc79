"""Analysis speed: landmarks per frame, embeddings, and full passive liveness of a 5 s 30 fps
512×512 clip (target ≤ 1.5 s wall on 2 cores)."""
import os
import subprocess
import tempfile

from _common import DATA, emit, timed

from avatar.analysis.checks import passive_check_bytes
from avatar.analysis.face import face_embedding, get_face_models, observe
from avatar.analysis.media import decode_audio, decode_clip, decode_image
from avatar.analysis.voice import speaker_template


def main():
    tmp = tempfile.mkdtemp()
    clip = os.path.join(tmp, "clip5s30fps.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", "1", "-i", str(DATA / "video/d3.mp4"), "-t", "5",
                    "-vf", "scale=512:512,fps=30", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", clip],
                   check=True)
    data = open(clip, "rb").read()
    frames, _, _ = decode_clip(data, fps=30)
    models = get_face_models()
    mesh = models.video_mesh()
    it = iter(range(10**9))

    def one_frame():
        img = frames.images[next(it) % len(frames)]
        observe(img, mesh.process(img))

    landmarks = timed(one_frame, repeat=60)
    img = decode_image((DATA / "faces/img1.jpg").read_bytes(), max_side=640)
    from avatar.analysis.face import observe_image

    obs = observe_image(img)
    face_emb = timed(lambda: face_embedding(img, obs), repeat=10)
    speech = decode_audio((DATA / "voices/1688/1688-142285-0000.flac").read_bytes())[: 5 * 16000]
    voice_emb = timed(lambda: speaker_template(speech), repeat=10)
    passive = timed(lambda: passive_check_bytes(data), repeat=5)
    emit("analysis", {
        "landmarks_ms_per_frame_512": landmarks["median_ms"],
        "face_embedding_ms": face_emb["median_ms"],
        "speaker_template_ms_5s": voice_emb["median_ms"],
        "passive_liveness_5s_30fps_512_wall_ms": passive["median_ms"],
        "passive_liveness_worst_ms": passive["max_ms"],
        "target_ms": 1500,
        "cpu_count": os.cpu_count(),
    })


if __name__ == "__main__":
    main()
