"""The README's client block (issue 24 item 5), run as written against a real `avatar serve` with
the embedded job runner: it registers a webhook, creates a generation with an idempotency key,
verifies the signed call, downloads the file and verifies it."""
import re
import subprocess
import sys

import pytest
import requests

from tests.ports import free_port
from tests.support.server import ROOT, avatar, avatar_env, running_server

pytestmark = pytest.mark.slow
EMAIL, PASSWORD = "subject@example.org", "Correct-horse-42-battery"


def _client_block() -> str:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- client:start -->", 1)[1].split("<!-- client:end -->", 1)[0]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def test_the_readme_client_runs_as_written(tmp_path, shared_data):
    env = avatar_env(tmp_path, AVATAR_JOB_RUNNER="threads", AVATAR_WEBHOOK_ALLOW_PRIVATE="true")
    avatar(env, "db", "upgrade")
    code = ("from pathlib import Path\nfrom avatar.config import Config\nfrom avatar.services import Services\n"
            "from avatar.demo.likeness import approved_likeness\nsvc = Services(Config.from_env())\n"
            f"approved_likeness(svc, Path({str(shared_data)!r}), email={EMAIL!r}, password={PASSWORD!r}, "
            "scopes=('voice',))\nsvc.close()\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=300)
    with running_server(env) as base:
        web = requests.Session()
        csrf = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
        web.post(f"{base}/auth/login", data={"email": EMAIL, "password": PASSWORD,
                                             "csrf_token": csrf.search(web.get(f"{base}/auth/login").text).group(1)})
        page = web.post(f"{base}/account/tokens", data={
            "name": "readme", "scope": ["generations", "webhooks"],
            "csrf_token": csrf.search(web.get(f"{base}/account/tokens").text).group(1)}).text
        token = re.search(r"(avt_[\w-]+)", page).group(1)
        port = free_port()
        script = tmp_path / "client.py"
        script.write_text(_client_block())
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env={
            **env, "AVATAR_URL": base, "AVATAR_TOKEN": token, "HOOK_PORT": str(port),
            "HOOK_URL": f"http://127.0.0.1:{port}/avatar-hook"})
        serve_log = (tmp_path / "serve.log").read_text(errors="replace")
    assert run.returncode == 0, run.stdout + run.stderr + serve_log[-3000:]
    generated, generation_id, finding = run.stdout.strip().splitlines()[-1].split(" ", 2)
    assert generated == "True" and int(generation_id) > 0 and f"generation {generation_id}" in finding, run.stdout
