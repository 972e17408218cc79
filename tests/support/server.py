"""A real `avatar serve` in another process, on a fresh instance, for the tests that need one."""
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def avatar_env(tmp_path: Path, **settings: str) -> dict:
    """The environment of a fresh embedded instance under tmp_path (no AVATAR_* leaking in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}
    env.update({"AVATAR_INSTANCE_PATH": str(tmp_path / "instance"), "AVATAR_JOB_RUNNER": "none",
                "AVATAR_SECURE_COOKIES": "false", **settings})
    return env


def avatar(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avatar.cli", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=300)


@contextmanager
def running_server(env: dict):
    """`avatar db upgrade`, then `avatar serve` on a free port until /healthz answers; yields its URL.
    The server's output goes to serve.log beside the instance folder."""
    avatar(env, "db", "upgrade")
    port = free_port()
    log = open(Path(env["AVATAR_INSTANCE_PATH"]).parent / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "avatar.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.25)
        else:
            raise AssertionError("avatar serve did not come up")
        yield base
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
