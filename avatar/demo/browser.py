"""One person at the app, driven in-process through its own HTTP handlers (a WSGI client that keeps
cookies): log-in, forms with their CSRF tokens, JSON calls, job polling. The demo uses one per role."""
from __future__ import annotations

import io
import re
import time

CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class DemoError(Exception):
    """A step of the demo did not give what it should; the message says which and why."""


class WebUser:
    def __init__(self, app, email: str, password: str):
        self.client = app.test_client()
        self.email = email
        self.password = password

    def csrf(self, page: str) -> str:
        html = self.client.get(page).get_data(as_text=True)
        m = CSRF_INPUT.search(html)
        if not m:
            raise DemoError(f"no form token on {page}")
        return m.group(1)

    def login(self) -> None:
        r = self.form("/auth/login", "/auth/login", email=self.email, password=self.password)
        if r.status_code not in (302, 303):
            raise DemoError(f"{self.email} could not log in ({r.status_code})")

    def form(self, page: str, action: str, **fields):
        """Posts a form the way the browser does after loading `page`."""
        data = {k: v for k, v in fields.items() if v is not None}
        return self.client.post(action, data={"csrf_token": self.csrf(page), **data})

    def api(self, method: str, url: str, page: str = "/enroll/capture", **kw):
        headers = {"Accept": "application/json"}
        if method != "GET":
            headers["X-CSRFToken"] = self.csrf(page)
        return self.client.open(url, method=method, headers=headers, **kw)

    def upload(self, url: str, field: str, data: bytes, name: str, mimetype: str):
        return self.api("POST", url, data={field: (io.BytesIO(data), name, mimetype)}, content_type="multipart/form-data")

    def wait_job(self, job_id: int, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.api("GET", f"/api/jobs/{job_id}").get_json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                if job["state"] != "succeeded":
                    raise DemoError(f"job {job_id} {job['state']}: {job.get('error')}")
                return job
            time.sleep(0.3)
        raise DemoError(f"job {job_id} did not finish in {timeout:.0f} s")


def expect(response, status: int | tuple, what: str):
    wanted = status if isinstance(status, tuple) else (status,)
    if response.status_code not in wanted:
        body = response.get_json(silent=True) or response.get_data(as_text=True)[:300]
        raise DemoError(f"{what}: HTTP {response.status_code}: {body}")
    return response
