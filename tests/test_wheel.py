"""An installed wheel is the app (issue 17 item 4): built from this tree, installed into a folder of
its own and run from a directory outside the checkout, it migrates its database, serves its pages
and scripts, and keeps its instance in the current directory, not in site-packages."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RUN_APP = """
import json, os, sys
import avatar
from avatar import create_app
app = create_app({"TESTING": True, "JOB_RUNNER": "none"})
client = app.test_client()
pages = {url: client.get(url).status_code for url in ("/", "/auth/login", "/verify", "/static/js/capture.js",
                                                      "/static/css/app.css")}
print(json.dumps({"package": avatar.__file__, "instance": app.instance_path, "pages": pages,
                  "login_form": b'name="password"' in client.get("/auth/login").data}))
"""


@pytest.mark.slow
def test_the_installed_wheel_runs_the_app(tmp_path):
    dist, site, work = tmp_path / "dist", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("avatar-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env = {k: v for k, v in env.items() if not k.startswith("AVATAR_")}
    up = subprocess.run([sys.executable, "-m", "avatar.cli", "db", "upgrade"], cwd=work, env=env,
                        capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr[-2000:]
    assert (work / "instance" / "avatar.db").is_file()  # the current directory's instance
    run = subprocess.run([sys.executable, "-c", RUN_APP], cwd=work, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["package"].startswith(str(site)), report  # the wheel's code, not the checkout's
    assert report["instance"] == str(work / "instance"), report
    assert set(report["pages"].values()) == {200} and report["login_form"], report
    assert not (site / "instance").exists() and not (site.parent / "instance").exists()
