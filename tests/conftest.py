"""Shared fixtures: an app per test on its own database and media folder, a client, a CLI
runner, logged-in helpers, and the PostgreSQL/Redis services of the machine."""
from __future__ import annotations

import fcntl
import os
import random
import re
import tempfile
import uuid
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import pytest
import sqlalchemy as sa

from avatar import create_app
from avatar.demo.footage import FOOTAGE, fitting_seed
from avatar.domain.challenges import draw, schedule
from avatar.domain.passwords import use_cheap_hashing_for_tests
from avatar.store.migrate import upgrade

use_cheap_hashing_for_tests()  # every in-process app of the suite; test_auth checks the production cost

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PG_ADMIN_URL = os.environ.get("AVATAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# `make test` runs the suite on three workers (pytest-xdist, --dist loadfile: a file's tests on one
# worker); each worker flushes a Redis database of its own, and PostgreSQL is shared (postgres_lock)
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_URL = os.environ.get("AVATAR_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - _WORKER % 8}")
POSTGRES_LOCK = Path(tempfile.gettempdir()) / "avatar-tests-postgres.lock"
STRONG_PASSWORD = "Correct-horse-42-battery"


def _service_missing(what: str, exc: Exception):
    """In CI the machine's services must be there; elsewhere their tests are skipped with a reason."""
    if os.environ.get("CI"):
        raise RuntimeError(f"{what} is required in CI but unreachable: {exc}")
    pytest.skip(f"{what} unreachable: {exc}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"test data not found at {SHARED_DATA}"
    return SHARED_DATA


# -- captures for the seeded challenge, built once per test session (each takes seconds) ------
SEED = fitting_seed()
ACTIONS, CODE = draw(random.Random(SEED))
PLAN = schedule(ACTIONS)
assert len(set(CODE)) < len(CODE), "the spliced-code attack needs a code with a repeated digit"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """Where the captures for the seeded challenge are built. Under `make test`'s workers
    (pytest-xdist) one folder per run, shared: the first worker that needs a capture builds it
    (built_once), the others wait for it instead of building it again on the same two cores."""
    from avatar.demo.media import tmpdir

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run:
        return tmpdir()
    folder = Path(tempfile.gettempdir()) / f"avatar-test-media-{run}"
    folder.mkdir(exist_ok=True)
    return folder


def built_once(media_dir: Path, name: str, build) -> None:
    """Runs build() (which writes its files into media_dir) unless another worker of this run
    already did; one builds at a time, the others wait on the lock."""
    with open(media_dir / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = media_dir / f"{name}.done"
        if not done.exists():
            build()
            done.touch()


@pytest.fixture(scope="session")
def passing_clip(shared_data, media_dir) -> bytes:
    """Real footage of one man answering the seeded challenge (see avatar.demo.footage)."""
    from avatar.demo.media import assemble_capture

    out = media_dir / "pass.mp4"
    built_once(media_dir, "pass", lambda: assemble_capture(PLAN, CODE, shared_data / FOOTAGE, shared_data / "digits", out))
    return out.read_bytes()


@pytest.fixture(scope="session")
def attack_clips(shared_data, media_dir, passing_clip) -> dict[str, Path]:
    """Captures that must fail, by the check that refuses them."""
    import numpy as np
    import soundfile as sf

    from avatar.demo.media import (
        assemble_capture,
        cut,
        digit_audio,
        encode_frames,
        frames_of,
        read_rgb,
        still_to_video,
    )

    d = shared_data
    silent = media_dir / "silent.wav"
    wrong_code = "".join(str((int(c) + 5) % 10) for c in CODE)
    clips = {
        "still image": (media_dir / "still.mp4", lambda out: still_to_video(
            read_rgb(d / "stills/s42.jpg"), out, seconds=PLAN["duration"], motion="shake", audio=silent)),
        "another person's clip": (media_dir / "other.mp4", lambda out: cut(
            d / "video/d10.mp4", out, 0, PLAN["duration"], size=512, loop=True)),
        "wrong order": (media_dir / "order.mp4", lambda out: assemble_capture(
            PLAN, CODE, d / FOOTAGE, d / "digits", out, shuffle_actions=True)),
        "missing code": (media_dir / "code.mp4", lambda out: assemble_capture(
            PLAN, wrong_code, d / FOOTAGE, d / "digits", out)),
        # one recording per digit, the repeated digit of the code played twice (pieced-together speech)
        "spliced code": (media_dir / "spliced.mp4", lambda out: assemble_capture(
            PLAN, CODE, d / FOOTAGE, d / "digits", out,
            digit_clips={c: digit_audio(d / "digits", c) for c in set(CODE)})),
        "silence": (media_dir / "silence.mp4", lambda out: encode_frames(
            frames_of(media_dir / "pass.mp4", fps=25), out, 25, audio=silent)),
    }

    def build():
        sf.write(silent, np.zeros(int(16000 * (PLAN["duration"] + 2)), np.float32), 16000)
        for out, make in clips.values():
            make(out)

    built_once(media_dir, "attacks", build)
    return {name: out for name, (out, _) in clips.items()}


# the watermark key and id of the installation whose outputs `own_outputs` are
OWN_OUTPUT_KEY = bytes(range(100, 132))
OWN_OUTPUT_MARK = "5eed0a11"


@pytest.fixture(scope="session")
def own_outputs(passing_clip, media_dir, shared_data) -> dict[str, bytes]:
    """Our renderer's output over the passing capture's frames with a real voice's speech:
    {"labeled": as delivered, "cropped": the visible label cut off, scaled to 360 px and re-encoded
    (H.264 CRF 28, AAC 96 kbit/s)}."""
    import numpy as np
    from scipy.signal import resample_poly

    from avatar.analysis.media import MediaFile, decode_audio
    from avatar.demo.media import label_cropped
    from avatar.synthesis.render import render_video
    from avatar.synthesis.speech import OUTPUT_SR, Speech

    src, out = media_dir / "own-output.mp4", media_dir / "own-output-cropped.mp4"

    def build():
        with MediaFile(passing_clip) as mf:
            frames = [f for _, f in mf.iter_frames(25, 512)]
        # continuous speech, as our outputs carry (the capture's sparse 8 kHz digits hold the audio
        # mark too weakly to be read)
        voice = np.concatenate([decode_audio(f.read_bytes())
                                for f in sorted((shared_data / "voices/2033").glob("*.flac"))[:3]])
        voice = np.resize(voice, int(len(frames) / 25 * 16000))
        speech = Speech(resample_poly(voice, OUTPUT_SR, 16000).astype(np.float32), OUTPUT_SR, backend="test")
        src.write_bytes(render_video(frames, speech, OWN_OUTPUT_MARK, OWN_OUTPUT_KEY))
        label_cropped(src, out, crf=28, audio_bitrate="96k")

    built_once(media_dir, "own-outputs", build)
    return {"labeled": src.read_bytes(), "cropped": out.read_bytes()}


@contextmanager
def postgres_lock(alone: bool):
    """Held while a test uses the machine's PostgreSQL: shared by the tests of both workers, or
    `alone` (a test that restarts the server) while no other test uses it."""
    with open(POSTGRES_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture
def pg_url(request):
    """A fresh PostgreSQL database for one test, dropped afterwards (under postgres_lock)."""
    with postgres_lock(alone=request.node.get_closest_marker("restarts_postgres") is not None):
        yield from _fresh_postgres_database()


def _fresh_postgres_database():
    try:
        # pre-ping: a test may restart the server (test_faults), leaving pooled connections dead
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        with admin.connect() as conn:
            name = f"avatar_t_{uuid.uuid4().hex[:10]}"
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        _service_missing("PostgreSQL at 127.0.0.1:5432", exc)
    url = re.sub(r"/[^/]+$", f"/{name}", PG_ADMIN_URL)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_url():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        _service_missing("Redis at 127.0.0.1:6379", exc)
    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request, tmp_path):
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'avatar.db'}"
    return request.getfixturevalue("pg_url")


def make_app(tmp_path: Path, **overrides):
    cfg = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "TESTING": True,
        "JOB_RUNNER": "none",
        "JOB_POLL_SECONDS": 0.2,
        "JOB_LEASE_SECONDS": 30,
        # many requests come from one test address; the tests of these limits set them themselves
        "REGISTER_RATE_PER_HOUR": 10_000,
        "VERIFY_RATE_PER_MINUTE": 10_000,
        **overrides,
    }
    db_url = cfg.get("DATABASE_URL") or f"sqlite:///{tmp_path / 'instance' / 'avatar.db'}"
    cfg["DATABASE_URL"] = db_url
    sqlite_file = Path(db_url[len("sqlite:///"):]) if db_url.startswith("sqlite:///") else None
    if sqlite_file is not None and not sqlite_file.exists():
        _copy_migrated_sqlite(sqlite_file)  # Alembic once per session, not per app
    else:
        upgrade(db_url)
    return create_app(cfg)


def app_on_copy(instance: Path, tmp_path: Path, **overrides):
    """make_app on a copy of another instance folder (database, media, keys): state built once per
    module (e.g. a passed capture, seconds of analysis), changed by each test on its own copy."""
    import shutil

    shutil.copytree(instance, tmp_path / "instance")
    return make_app(tmp_path, **overrides)


@lru_cache(maxsize=1)
def _migrated_template() -> Path:
    """A SQLite database at the head revision, migrated once per test session."""
    template = Path(tempfile.mkdtemp(prefix="avatar-template-db-")) / "avatar.db"
    upgrade(f"sqlite:///{template}")
    return template


def _copy_migrated_sqlite(path: Path) -> None:
    """A new SQLite database at path, at the head revision: a copy (SQLite's backup API, so nothing
    in a WAL is left behind) of the session's migrated template."""
    import sqlite3

    from avatar.config import ensure_private_dir

    ensure_private_dir(path.parent)
    src, dst = sqlite3.connect(_migrated_template()), sqlite3.connect(path)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    os.chmod(path, 0o600)


@pytest.fixture
def app(request, tmp_path):
    """The app on a fresh instance; a test (or module, via pytestmark) sets settings with
    @pytest.mark.app_config(NAME=value, ...)."""
    marker = request.node.get_closest_marker("app_config")
    app = make_app(tmp_path, **(marker.kwargs if marker else {}))
    yield app
    app.extensions["avatar"].close()


@pytest.fixture
def services(app):
    return app.extensions["avatar"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def row_counts(services, *models) -> dict[str, int]:
    """How many rows each model's table holds (to prove a refused request wrote nothing)."""
    with services.db.session_scope() as s:
        return {m.__name__: s.scalar(sa.select(sa.func.count()).select_from(m)) for m in models}


CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, path: str = "/auth/login") -> str:
    html = client.get(path).get_data(as_text=True)
    m = CSRF_FIELD.search(html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


class AuthActions:
    """Registers and logs in users through the real forms (CSRF included)."""

    def __init__(self, client, services):
        self._client = client
        self._services = services

    def register(self, email="ada@example.org", name="Ada Lovelace", password=STRONG_PASSWORD):
        token = csrf_token(self._client, "/auth/register")
        return self._client.post("/auth/register", data={
            "email": email, "full_name": name, "password": password, "confirm": password, "csrf_token": token})

    def login(self, email="ada@example.org", password=STRONG_PASSWORD, next_url=None):
        token = csrf_token(self._client, "/auth/login")
        url = "/auth/login" + (f"?next={next_url}" if next_url else "")
        return self._client.post(url, data={"email": email, "password": password, "csrf_token": token})

    def logout(self):
        token = csrf_token(self._client, "/account")
        return self._client.post("/auth/logout", data={"csrf_token": token})

    def create(self, email, role="user", name="Test Person", password=STRONG_PASSWORD):
        """Creates an account directly (with a role) and returns its id."""
        from avatar.domain.accounts import register
        from avatar.store.models import Role

        with self._services.db.session_scope() as s:
            return register(s, email, name, password, role=Role(role)).id


@pytest.fixture
def auth(client, services):
    return AuthActions(client, services)


FINAL_JOB_STATES = ("succeeded", "failed", "cancelled")


def wait_for_jobs(services, ids, done=lambda row: row.state in FINAL_JOB_STATES, timeout: float = 60,
                  poll: float = 0.2) -> dict:
    """Polls the jobs' rows until done(row) holds for every one; {id: row}. On timeout an
    AssertionError names each job's state, message and worker."""
    import time

    from avatar.store.models import Job

    end = time.time() + timeout
    while True:
        with services.db.session_scope() as s:
            rows = {i: s.get(Job, i) for i in ids}
        if all(done(r) for r in rows.values()):
            return rows
        if time.time() > end:
            raise AssertionError({i: (r.state, r.message, r.worker_id) for i, r in rows.items()})
        time.sleep(poll)
