"""Webhook delivery latency against a real `avatar serve`: how long after a generation job
recorded its output does the signed `generation.ready` call reach the receiver? The receiver
(an HTTP server in this process) checks each signature; the start of each measure is the
`generation.completed` audit event, appended in the transaction that stores the output and writes
the delivery (so the figure includes that commit, handing the delivery job to the runner, the job
itself and the HTTP call).

Run on the embedded default (SQLite, job threads in the app) and on the scale-out setting
(PostgreSQL, Celery over Redis, 2 worker processes). N speech generations one after another per
mode; p50 / p95 / max in ms.

    python bench/bench_webhooks.py [--n 12] [--mode embedded|scaleout|both]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import sqlalchemy as sa
from _common import DATA, ROOT, emit, free_port
from bench_load import AVATAR, CSRF_FIELD, drop_database, runner_settings, start, stop, wait_ready

from avatar.demo.likeness import PASSWORD

SCRIPT = "Hello, this is a short note for my sister. See you on Sunday."


class Receiver:
    """Records the arrival time of every call whose signature verifies (the secret is set once the
    endpoint exists)."""

    def __init__(self):
        self.secret = None
        self.arrivals: dict[int, float] = {}  # generation id -> time.time() of the ready call
        self.bad_signatures = 0
        self.event = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server name
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(204)
                self.end_headers()
                key = base64.b64decode(outer.secret.removeprefix("whsec_"))
                signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode() + body
                want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
                if not any(hmac.compare_digest(s.partition(",")[2], want) for s in self.headers["webhook-signature"].split()):
                    outer.bad_signatures += 1
                    return
                event = json.loads(body)
                with outer.event:
                    outer.arrivals[event["data"]["generation_id"]] = arrived
                    outer.event.notify_all()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, generation_id: int, timeout: float) -> float:
        with self.event:
            if not self.event.wait_for(lambda: generation_id in self.arrivals, timeout):
                raise SystemExit(f"no webhook for generation {generation_id} within {timeout:g} s")
            return self.arrivals[generation_id]


def make_likeness(env: dict) -> str:
    """An approved likeness in the instance (a separate process with the instance's settings)."""
    email = "subject@example.org"
    code = ("import sys\nfrom pathlib import Path\nfrom avatar.config import Config\nfrom avatar.services import Services\n"
            "from avatar.demo.likeness import approved_likeness\nsvc = Services(Config.from_env())\n"
            f"approved_likeness(svc, Path({str(DATA)!r}), email={email!r}, scopes=('voice',))\nsvc.close()\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return email


def completed_at(db_url: str, generation_id: int) -> float:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            at = conn.execute(sa.text("SELECT at FROM audit_events WHERE action = 'generation.completed' "
                                      "AND target_id = :g"), {"g": generation_id}).scalar()
    finally:
        engine.dispose()
    return datetime.fromisoformat(at.rstrip("Z")).replace(tzinfo=timezone.utc).timestamp()


def run_mode(mode: str, n: int) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix=f"avatar-webhooks-{mode}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}
    env.update({"AVATAR_INSTANCE_PATH": str(run_dir / "instance"), "PYTHONPATH": str(ROOT),
                "AVATAR_SECURE_COOKIES": "false", "AVATAR_WEBHOOK_ALLOW_PRIVATE": "true"})
    procs, pg_name = [], None
    receiver = Receiver()
    try:
        db_url, pg_name, settings = runner_settings(mode, run_dir, "avatar_hooks")
        env.update(settings)
        subprocess.run(AVATAR + ["db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
        email = make_likeness(env)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        procs.append(start(AVATAR + ["serve", "--host", "127.0.0.1", "--port", str(port)], env, run_dir / "serve.log"))
        if mode == "scaleout":
            for i in range(2):
                procs.append(start(AVATAR + ["worker", "--concurrency", "1", "--loglevel", "warning"], env,
                                   run_dir / f"worker{i}.log"))
        wait_ready(base)
        http = requests.Session()
        token = CSRF_FIELD.search(http.get(f"{base}/auth/login").text).group(1)
        http.post(f"{base}/auth/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        headers = {"X-CSRFToken": CSRF_FIELD.search(http.get(f"{base}/account").text).group(1)}
        r = http.post(f"{base}/api/webhooks", json={"url": receiver.url, "events": ["generation.ready"]}, headers=headers)
        r.raise_for_status()
        receiver.secret = r.json()["secret"]
        latencies, job_seconds = [], []
        for _ in range(n):
            asked = time.time()
            r = http.post(f"{base}/api/generations", headers=headers,
                          json={"modality": "speech", "purpose": "personal", "script": SCRIPT})
            r.raise_for_status()
            gen_id = r.json()["generation_id"]
            arrived = receiver.wait_for(gen_id, timeout=300)
            done = completed_at(db_url, gen_id)
            latencies.append(1000 * (arrived - done))
            job_seconds.append(done - asked)
        latencies.sort()
        return {"mode": mode, "n": n, "p50_ms": round(statistics.median(latencies), 1),
                "p95_ms": round(latencies[min(n - 1, round(0.95 * (n - 1)))], 1), "max_ms": round(latencies[-1], 1),
                "min_ms": round(latencies[0], 1), "generation_seconds_median": round(statistics.median(job_seconds), 2),
                "bad_signatures": receiver.bad_signatures}
    finally:
        receiver.server.shutdown()
        for p in procs:
            stop(p)
        if pg_name:
            drop_database(pg_name)
        shutil.rmtree(run_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--mode", choices=["embedded", "scaleout", "both"], default="both")
    args = ap.parse_args()
    for mode in (["embedded", "scaleout"] if args.mode == "both" else [args.mode]):
        emit("webhook_delivery_latency", run_mode(mode, args.n))


if __name__ == "__main__":
    main()
