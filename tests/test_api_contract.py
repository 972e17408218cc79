"""The contract is the truth (issue 24 item 1): Schemathesis runs every check it has against a real
`avatar serve` with the contract at /api/openapi.json, once with an API token and once with a
browser session (cookie + X-CSRFToken), and any finding fails the suite. The exclusions, each with
its reason, are in schemathesis.toml. A fixed seed keeps the run reproducible."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.server import ROOT, avatar, avatar_env, running_server

pytestmark = pytest.mark.slow

EMAIL, PASSWORD = "contract@example.org", "Tidy-horse-battery-77!"
ST = str(Path(sys.executable).parent / "st")


def _csrf(session: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', session.get(url, timeout=10).text).group(1)


def _signed_in(base: str) -> requests.Session:
    """A browser session as Schemathesis will present it: the session is bound to its client
    (Flask-Login's strong session protection), so it is made with Schemathesis's User-Agent."""
    from schemathesis.core.transport import USER_AGENT

    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    r = s.post(f"{base}/auth/login", data={"email": EMAIL, "password": PASSWORD,
                                          "csrf_token": _csrf(s, f"{base}/auth/login")}, timeout=30)
    assert r.ok
    return s


def _schemathesis(base: str, tmp_path: Path, auth: str, env: dict, *headers: str) -> None:
    """`st run --checks all` with schemathesis.toml's exclusions and one way to authenticate (a
    section naming the contract's security scheme, its secret from the environment)."""
    config = tmp_path / f"schemathesis-{auth.split(']')[0].rsplit('.', 1)[-1]}.toml"
    config.write_text((ROOT / "schemathesis.toml").read_text() + "\n" + auth + "\n")
    args = [ST, "--config-file", str(config), "run", f"{base}/api/openapi.json", "--checks", "all",
            "--max-examples", "25", "--seed", "20261206", "--no-color"]
    for header in headers:
        args += ["-H", header]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600,  # its cache stays there
                          env={**os.environ, **env})
    server_log = (tmp_path / "serve.log").read_text(errors="replace")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:] + "\nserver:\n" + server_log[-6000:]
    assert "Tested: 19" in proc.stdout, proc.stdout[-3000:]


def test_the_contract_holds_under_schemathesis_with_a_token_and_with_a_session(tmp_path):
    env = avatar_env(tmp_path, AVATAR_VERIFY_RATE_PER_MINUTE="100000")
    avatar(env, "db", "upgrade")
    avatar(env, "admin", "create", "--email", EMAIL, "--name", "Contract Tester", "--role", "user",
           "--password", PASSWORD)
    with running_server(env) as base:
        session = _signed_in(base)
        r = session.post(f"{base}/account/tokens", data={"csrf_token": _csrf(session, f"{base}/account/tokens"),
                                                         "name": "contract", "scope": ["generations", "enroll", "webhooks"]})
        token = re.search(r"(avt_[\w-]+)", r.text).group(1)
        _schemathesis(base, tmp_path, '[auth.openapi.token]\nbearer = "${ST_TOKEN}"', {"ST_TOKEN": token})
        browser = _signed_in(base)
        csrf = _csrf(browser, f"{base}/account/tokens")
        _schemathesis(base, tmp_path, '[auth.openapi.session]\napi_key = "${ST_SESSION}"',
                      {"ST_SESSION": browser.cookies.get("avatar_session")}, f"X-CSRFToken: {csrf}")
