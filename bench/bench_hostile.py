"""Hostile uploads against a real `avatar serve` (embedded default: SQLite, local media, job
threads): per file, the HTTP status, the seconds until the answer (and, for an accepted enrollment
upload, until its verification job ended) and the peak memory growth of the server's process tree
(the app and the ffmpeg processes it starts, RSS sampled every 20 ms) over its idle size.

Files: a one-hour webm whose Duration element was voided (what MediaRecorder writes has none),
the same at 590 s and at 80 s (inside the enrollment limit), a 60 s 1280×720 H.264 clip of tens of
MB, a 10-minute WAV whose header claims 1 s, and a JSON body nested 20,000 deep. Targets (issue 23):
every answer in seconds, growth ≤ ~300 MB per upload.

    python bench/bench_hostile.py
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests
from _common import ROOT, emit, free_port
from bench_load import AVATAR, CSRF_FIELD, PASSWORD, create_users, start, stop, wait_ready

from avatar.demo.hostile_media import FFMPEG, long_wav_lying_header, long_webm, nested_json


class TreeMemory:
    """Peak RSS of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        total = 0
        for p in [self.root, *self.root.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now())

    def __enter__(self):
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def make_files(d: Path) -> dict[str, Path]:
    files = {"webm_1h_no_duration": long_webm(d / "hour.webm", 3600),
             "webm_590s_no_duration": long_webm(d / "590.webm", 590),
             "webm_80s_no_duration": long_webm(d / "80.webm", 80),
             "wav_10min_header_says_1s": long_wav_lying_header(d / "lying.wav", 600)}
    big = d / "big720p.mp4"
    subprocess.run(FFMPEG + ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=60", "-f", "lavfi",
                             "-i", "sine=f=300:d=60", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23",
                             "-c:a", "aac", "-shortest", str(big)], check=True, capture_output=True)
    files["mp4_60s_720p"] = big
    over = d / "over_limit.bin"  # a body just over the 64 MB limit: the app's JSON 413
    with open(over, "wb") as fh:
        fh.truncate(65 * 1024 * 1024)
    files["bytes_65MB"] = over
    return files


def login(base: str, email: str) -> tuple[requests.Session, dict]:
    http = requests.Session()
    token = CSRF_FIELD.search(http.get(f"{base}/auth/login").text).group(1)
    http.post(f"{base}/auth/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    token = CSRF_FIELD.search(http.get(f"{base}/account").text).group(1)
    return http, {"X-CSRFToken": token}


def _answer(r: requests.Response) -> str:
    try:
        body = r.json()
        return str(body.get("error") or body.get("finding"))[:90]
    except ValueError:
        return f"(not JSON: {r.headers.get('Content-Type')}) {r.text[:60]}"


def measure(server: int, fn) -> dict:
    time.sleep(1.0)  # let the previous request's memory settle
    with TreeMemory(server) as mem:
        idle = mem.peak
        t = time.monotonic()
        out = fn()
        seconds = time.monotonic() - t
    return {**out, "seconds": round(seconds, 2), "peak_growth_mb": round((mem.peak - idle) / 2 ** 20, 1)}


def main() -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="avatar-hostile-"))
    files = make_files(run_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}
    env.update({"AVATAR_INSTANCE_PATH": str(run_dir / "instance"), "PYTHONPATH": str(ROOT),
                "AVATAR_SECURE_COOKIES": "false", "AVATAR_JOB_RUNNER": "threads",
                "AVATAR_VERIFY_RATE_PER_MINUTE": "1000"})
    subprocess.run(AVATAR + ["db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    email = create_users(env, 1)[0]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(AVATAR + ["serve", "--host", "127.0.0.1", "--port", str(port)], env, run_dir / "serve.log")
    results = []
    try:
        wait_ready(base)
        http, headers = login(base, email)

        def verify(path: Path):
            def call():
                r = requests.post(f"{base}/api/verify", files={"file": (path.name, path.read_bytes())}, timeout=600)
                return {"status": r.status_code, "answer": _answer(r)}
            return call

        def enroll(path: Path, as_long_as_the_challenge: bool = False):
            """The upload and its job, measured; the challenge (and for a file as long as it, the
            time the recording takes) comes first, unmeasured."""
            challenge = http.post(f"{base}/api/enroll/sessions", headers=headers).json()
            nonce, upload = challenge["nonce"], path
            if as_long_as_the_challenge:  # cut to the plan's length and "record" that long, so the
                seconds = challenge["plan"]["duration"]  # job decodes all of it
                upload = path.with_name(f"cut-{path.name}")
                subprocess.run(FFMPEG + ["-i", str(path), "-t", f"{seconds:.2f}", "-c", "copy", str(upload)],
                               check=True, capture_output=True)
                time.sleep(seconds)

            def call():
                r = http.post(f"{base}/api/enroll/sessions/{nonce}/recording", headers=headers,
                              files={"recording": (upload.name, upload.read_bytes())}, timeout=600)
                out = {"status": r.status_code}
                if r.status_code != 202:
                    return {**out, "answer": _answer(r)}
                job = r.json()["job_id"]
                while True:
                    j = http.get(f"{base}/api/jobs/{job}").json()
                    if j["state"] in ("succeeded", "failed", "cancelled"):
                        return {**out, "job": j["state"], "answer": str((j.get("result") or {}).get("hint") or j.get("error"))[:90]}
                    time.sleep(0.2)
            return call

        for name, path in files.items():
            results.append({"file": name, "route": "POST /api/verify (anonymous)",
                            "bytes": path.stat().st_size, **measure(proc.pid, verify(path))})
        for name in ("webm_1h_no_duration", "webm_80s_no_duration", "mp4_60s_720p"):
            results.append({"file": name, "route": "POST /api/enroll/sessions/<nonce>/recording (+ its job)",
                            "bytes": files[name].stat().st_size, **measure(proc.pid, enroll(files[name]))})
        results.append({"file": "mp4_720p cut to the challenge's length, uploaded after that long",
                        "route": "POST /api/enroll/sessions/<nonce>/recording (+ its job, decoding it all)",
                        **measure(proc.pid, enroll(files["mp4_60s_720p"], as_long_as_the_challenge=True))})

        def nested():
            r = http.post(f"{base}/api/generations", data=nested_json(20_000), timeout=600,
                          headers={**headers, "Content-Type": "application/json"})
            return {"status": r.status_code, "answer": _answer(r)}
        results.append({"file": "JSON nested 20,000 deep", "route": "POST /api/generations", **measure(proc.pid, nested)})
    finally:
        stop(proc)
    for r in results:
        print(json.dumps(r))
    emit("hostile_uploads", {"items": len(results), "max_seconds": max(r["seconds"] for r in results),
                             "max_peak_growth_mb": max(r["peak_growth_mb"] for r in results),
                             "server_errors": sum(r["status"] >= 500 for r in results)})


if __name__ == "__main__":
    main()
