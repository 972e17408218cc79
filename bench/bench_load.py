"""Load test on loopback: N users (default 20) enroll concurrently for a fixed time against a real
`avatar serve`: each logs in, then loops: ask for a challenge, wait as long as the recording takes
(the server refuses a recording longer than the time since its challenge), upload the capture,
poll its verification job every second until it ends, read the enrollment status. One thread per
user (a bounded client: at most N requests in flight).

The capture is real footage assembled to answer the challenge (avatar.demo.footage), so every job
runs the full verification. For that the throwaway instance uses the test-only fixed challenge seed
(AVATAR_TESTING, as `avatar demo` does): every user is issued the same actions and code, each with
its own single-use nonce.

Run twice: the embedded default (SQLite, local media, in-process job threads) and the scale-out
setting (PostgreSQL, Celery over Redis, 2 worker processes). After the clients stop, the jobs are
drained and counted: every upload the server acknowledged (202) must have its encrypted media row,
its blob and a verification job that ended; nothing queued, running or missing.

    python bench/bench_load.py [--users 20] [--seconds 120] [--mode embedded|scaleout|both]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import requests
import sqlalchemy as sa
from _common import DATA, ROOT, emit, free_port

from avatar.demo.footage import fitting_seed

PASSWORD = "Correct-horse-42-battery"
PG_ADMIN = os.environ.get("AVATAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("AVATAR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
AVATAR = [sys.executable, "-m", "avatar.cli"]
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')  # every page's form token (base.html)


class Recorder:
    """Latency and status of every request, by kind."""

    def __init__(self):
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.acknowledged_uploads: list[int] = []  # job ids the server answered 202 for
        self.verdicts: Counter = Counter()  # capture passed True/False, as seen by the users

    def call(self, kind: str, fn, *args, **kwargs):
        t = time.perf_counter()
        try:
            resp = fn(*args, timeout=60, **kwargs)
            status = resp.status_code
        except requests.RequestException as exc:
            resp, status = None, f"error {type(exc).__name__}"
        with self.lock:
            self.samples[kind].append((time.perf_counter() - t) * 1000)
            self.statuses[kind][status] += 1
        return resp

    def figures(self, seconds: float) -> dict:
        total = sum(len(v) for v in self.samples.values())
        by_kind = {}
        for kind, ms in sorted(self.samples.items()):
            ms = sorted(ms)
            by_kind[kind] = {"requests": len(ms), "p50_ms": round(statistics.median(ms), 1),
                             "p95_ms": round(ms[max(0, int(0.95 * len(ms)) - 1)], 1), "max_ms": round(ms[-1], 1),
                             "statuses": {str(k): v for k, v in self.statuses[kind].items()}}
        every = sorted(x for v in self.samples.values() for x in v)
        errors = sum(n for c in self.statuses.values() for s, n in c.items()
                     if not (isinstance(s, int) and (s < 400 or s == 429)))
        return {"requests": total, "throughput_rps": round(total / seconds, 1),
                "p95_ms_all": round(every[max(0, int(0.95 * len(every)) - 1)], 1) if every else None,
                "errors": errors, "captures_passed": self.verdicts[True], "captures_failed": self.verdicts[False],
                "rate_limited_429": sum(c.get(429, 0) for c in self.statuses.values()),
                "by_kind": by_kind}


class Captures:
    """One assembled capture per (actions, code) issued, built once and shared by the users."""

    def __init__(self, out: Path):
        self.out, self.lock, self.cache = out, threading.Lock(), {}

    def answer(self, challenge: dict) -> bytes:
        from avatar.demo.footage import FOOTAGE, assemble_capture

        key = (json.dumps(challenge["plan"], sort_keys=True), challenge["code"])
        with self.lock:
            if key not in self.cache:
                path = self.out / f"capture{len(self.cache)}.mp4"
                assemble_capture(challenge["plan"], challenge["code"], DATA / FOOTAGE, DATA / "digits", path)
                self.cache[key] = path.read_bytes()
            return self.cache[key]


def user_loop(base: str, email: str, captures: Captures, deadline: float, rec: Recorder) -> None:
    http = requests.Session()
    page = rec.call("login_page", http.get, f"{base}/auth/login")
    token = CSRF_FIELD.search(page.text).group(1)
    rec.call("login", http.post, f"{base}/auth/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    page = rec.call("capture_page", http.get, f"{base}/enroll/capture")
    headers = {"X-CSRFToken": CSRF_FIELD.search(page.text).group(1), "Accept": "application/json"}
    while time.time() < deadline:
        resp = rec.call("challenge", http.post, f"{base}/api/enroll/sessions", headers=headers)
        if resp is None or resp.status_code != 201:
            time.sleep(2)
            continue
        issued, challenge = time.monotonic(), resp.json()
        recording = captures.answer(challenge)
        time.sleep(max(0.0, challenge["plan"]["duration"] + 1 - (time.monotonic() - issued)))  # "recording"
        nonce = challenge["nonce"]
        resp = rec.call("upload", http.post, f"{base}/api/enroll/sessions/{nonce}/recording", headers=headers,
                        files={"recording": ("capture.mp4", recording, "video/mp4")})
        if resp is None or resp.status_code != 202:
            continue
        job_id = resp.json()["job_id"]
        with rec.lock:
            rec.acknowledged_uploads.append(job_id)
        while time.time() < deadline:
            time.sleep(1)
            job = rec.call("poll_job", http.get, f"{base}/api/jobs/{job_id}", headers=headers)
            if job is not None and job.status_code == 200 and job.json()["state"] in ("succeeded", "failed", "cancelled"):
                with rec.lock:
                    rec.verdicts[(job.json().get("result") or {}).get("passed")] += 1
                break
        rec.call("enroll_status", http.get, f"{base}/api/enroll/status", headers=headers)


def wait_ready(base: str, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the app at {base} did not start")


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def counts(db_url: str, media_root: Path | None) -> dict:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        jobs = dict(conn.execute(sa.text(
            "SELECT state, count(*) FROM jobs WHERE name = 'enrollment.verify' GROUP BY state")).all())
        uploads = conn.execute(sa.text(
            "SELECT count(*) FROM liveness_sessions WHERE recording_media_id IS NOT NULL")).scalar()
        with_job = conn.execute(sa.text(
            "SELECT count(*) FROM liveness_sessions WHERE recording_media_id IS NOT NULL AND job_id IS NOT NULL")).scalar()
        media = conn.execute(sa.text(
            "SELECT count(*) FROM media_objects WHERE kind = 'evidence' AND deleted_at IS NULL")).scalar()
        job_ids = {r[0] for r in conn.execute(sa.text("SELECT id FROM jobs WHERE name = 'enrollment.verify'"))}
    engine.dispose()
    blobs = (sum(1 for p in media_root.rglob("*") if p.is_file() and "/evidence/" in str(p))
             if media_root is not None else None)
    return {"jobs_by_state": jobs, "uploads_stored": uploads, "uploads_with_job": with_job,
            "evidence_media_rows": media, "evidence_blobs": blobs, "_job_ids": job_ids}


def drain(db_url: str, timeout: float) -> float:
    engine = sa.create_engine(db_url)
    started = time.time()
    try:
        while time.time() - started < timeout:
            with engine.connect() as conn:
                left = conn.execute(sa.text("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")).scalar()
            if not left:
                break
            time.sleep(1)
    finally:
        engine.dispose()
    return round(time.time() - started, 1)


def create_users(env: dict, n: int) -> list[str]:
    """Accounts made with the same code the app uses, in a separate process (its own settings)."""
    emails = [f"load{i}@example.org" for i in range(n)]
    code = ("import sys\nfrom avatar.config import Config\nfrom avatar.services import Services\n"
            "from avatar.domain.accounts import register\nsvc = Services(Config.from_env())\n"
            "with svc.db.session_scope() as s:\n"
            f"    for e in sys.argv[1:]: register(s, e, 'Load ' + e.split('@')[0], {PASSWORD!r})\n")
    subprocess.run([sys.executable, "-c", code, *emails], cwd=ROOT, env=env, check=True)
    return emails


def runner_settings(mode: str, run_dir: Path, prefix: str) -> tuple[str, str | None, dict]:
    """(database URL, PostgreSQL database name or None, AVATAR_* settings) of a run: embedded
    (SQLite in run_dir, job threads) or scaleout (a new PostgreSQL database, Celery over a flushed
    Redis database)."""
    if mode == "embedded":
        db_url = f"sqlite:///{run_dir / 'instance' / 'avatar.db'}"
        return db_url, None, {"AVATAR_DATABASE_URL": db_url, "AVATAR_JOB_RUNNER": "threads"}
    pg_name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{pg_name}"'))
    admin.dispose()
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    db_url = re.sub(r"/[^/]+$", f"/{pg_name}", PG_ADMIN)
    return db_url, pg_name, {"AVATAR_DATABASE_URL": db_url, "AVATAR_JOB_RUNNER": "celery", "AVATAR_BROKER_URL": REDIS}


def drop_database(pg_name: str) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
    admin.dispose()


def run_mode(mode: str, users: int, seconds: float, keep: bool) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix=f"avatar-load-{mode}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}
    # plain HTTP on loopback: cookies may not be marked Secure, or the client would not send them back
    env.update({"AVATAR_INSTANCE_PATH": str(run_dir / "instance"), "PYTHONPATH": str(ROOT),
                "AVATAR_SECURE_COOKIES": "false", "AVATAR_TESTING": "true", "AVATAR_CHALLENGE_SEED": str(fitting_seed())})
    procs: list[subprocess.Popen] = []
    pg_name = None
    try:
        db_url, pg_name, settings = runner_settings(mode, run_dir, "avatar_load")
        env.update(settings)
        subprocess.run(AVATAR + ["db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
        emails = create_users(env, users)
        before = counts(db_url, run_dir / "instance" / "media")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        procs.append(start(AVATAR + ["serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "16"],
                           env, run_dir / "serve.log"))
        if mode == "scaleout":
            for i in range(2):
                procs.append(start(AVATAR + ["worker", "--concurrency", "1", "--loglevel", "warning"], env,
                                   run_dir / f"worker{i}.log"))
        wait_ready(base)
        captures = Captures(run_dir)
        rec = Recorder()
        deadline = time.time() + seconds
        clients = [threading.Thread(target=user_loop, args=(base, e, captures, deadline, rec)) for e in emails]
        t0 = time.time()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        elapsed = time.time() - t0
        drain_s = drain(db_url, timeout=600)
        after = counts(db_url, run_dir / "instance" / "media")
        acknowledged = set(rec.acknowledged_uploads)
        ended = sum(n for s, n in after["jobs_by_state"].items() if s in ("succeeded", "failed", "cancelled"))
        lost = len(acknowledged - after.pop("_job_ids"))
        before.pop("_job_ids")
        return {"mode": mode, "users": users, "seconds": round(elapsed, 1), **rec.figures(elapsed),
                "uploads_acknowledged": len(acknowledged), "before": before, "after": after,
                "drain_seconds": drain_s, "jobs_ended": ended, "acknowledged_but_missing": lost,
                "all_accounted": (lost == 0 and len(acknowledged) == after["uploads_stored"] == after["uploads_with_job"]
                                  == after["evidence_media_rows"] == ended
                                  and after["evidence_blobs"] in (None, after["evidence_media_rows"])),
                "run_dir": str(run_dir) if keep else None}
    finally:
        for p in procs:
            stop(p)
        if pg_name:
            drop_database(pg_name)
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--mode", choices=["embedded", "scaleout", "both"], default="both")
    ap.add_argument("--keep", action="store_true", help="keep the run folder (logs, database, media)")
    args = ap.parse_args()
    modes = ["embedded", "scaleout"] if args.mode == "both" else [args.mode]
    for mode in modes:
        emit("load", run_mode(mode, args.users, args.seconds, args.keep))


if __name__ == "__main__":
    main()
