"""The `avatar` command and the health endpoints."""
import subprocess
import sys

import sqlalchemy as sa
from click.testing import CliRunner

from avatar.cli import main
from avatar.store.models import User


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "avatar.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for name in ("serve", "db", "admin", "worker", "audit"):
        assert name in out


def test_db_upgrade_and_admin_ensure_on_a_fresh_instance(tmp_path):
    env = {"AVATAR_INSTANCE_PATH": str(tmp_path / "inst"), "AVATAR_ADMIN_PASSWORD": ""}
    r = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert r.exit_code == 0, r.output
    first = CliRunner().invoke(main, ["admin", "ensure"], env=env)
    assert first.exit_code == 0 and "password (shown once" in first.output
    second = CliRunner().invoke(main, ["admin", "ensure"], env=env)
    assert second.exit_code == 0 and "exists" in second.output and "password" not in second.output
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'inst' / 'avatar.db'}")
    with eng.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(User).where(User.role == "admin")).scalar() == 1
    eng.dispose()


def test_commands_on_an_unmigrated_database_say_to_upgrade(tmp_path, shared_data, pg_url):
    """A new user who skips `avatar db upgrade` gets one line saying so (exit 1), not a traceback,
    on the embedded SQLite and on PostgreSQL."""
    for env in ({"AVATAR_INSTANCE_PATH": str(tmp_path / "inst")},
                {"AVATAR_INSTANCE_PATH": str(tmp_path / "inst-pg"), "AVATAR_DATABASE_URL": pg_url}):
        for args in (["verify", str(shared_data / "video/d3.mp4"), "--json"], ["audit", "verify"]):
            r = CliRunner().invoke(main, args, env=env)
            assert r.exit_code == 1 and "run `avatar db upgrade`" in r.output, (args, r.output)
            assert "Traceback" not in r.output and "sqlalchemy" not in r.output.lower(), r.output
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    r = CliRunner().invoke(main, ["verify", str(shared_data / "video/d3.mp4"), "--json"], env=env)
    assert r.exit_code == 3, r.output  # upgraded: read, and not ours


def test_admin_ensure_with_weak_env_password_fails_clearly(tmp_path):
    env = {"AVATAR_INSTANCE_PATH": str(tmp_path / "inst"), "AVATAR_ADMIN_PASSWORD": "short"}
    CliRunner().invoke(main, ["db", "upgrade"], env=env)
    r = CliRunner().invoke(main, ["admin", "ensure"], env=env)
    assert r.exit_code == 1 and "AVATAR_ADMIN_PASSWORD" in r.output


def test_admin_create_with_role(tmp_path):
    env = {"AVATAR_INSTANCE_PATH": str(tmp_path / "inst")}
    CliRunner().invoke(main, ["db", "upgrade"], env=env)
    r = CliRunner().invoke(main, ["admin", "create", "--email", "rev@example.org", "--role", "reviewer",
                                  "--password", "Reviewer-pass-2026"], env=env)
    assert r.exit_code == 0, r.output
    dup = CliRunner().invoke(main, ["admin", "create", "--email", "rev@example.org", "--password",
                                    "Reviewer-pass-2026"], env=env)
    assert dup.exit_code == 1 and "already exists" in dup.output


def test_bad_configuration_is_a_clear_cli_error(tmp_path):
    r = CliRunner().invoke(main, ["db", "upgrade"], env={"AVATAR_JOB_RUNNER": "celery", "AVATAR_BROKER_URL": ""})
    assert r.exit_code == 1 and "AVATAR_BROKER_URL" in r.output


def test_healthz_and_readyz(client, app):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    body = ready.get_json()
    assert ready.status_code == 200, body
    assert body["checks"]["database"]["ok"] and body["checks"]["media"]["ok"] and body["checks"]["models"]["ok"]


def test_readyz_reports_an_unreachable_database(tmp_path):
    from avatar.store.db import make_engine
    from tests.conftest import make_app

    app = make_app(tmp_path)
    app.extensions["avatar"].db.engine = make_engine("sqlite:////nonexistent/dir/x.db")
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["checks"]["database"]["ok"] is False


def test_model_threads_follow_omp_num_threads(monkeypatch):
    """Whisper (ctranslate2) and Kokoro (onnxruntime) take OMP_NUM_THREADS as torch and BLAS do; unset
    or unreadable, both cores of a 2-core machine."""
    import os

    from avatar.analysis.model_files import cpu_threads

    default = min(2, os.cpu_count() or 1)
    for value, threads in (("1", 1), ("3", 3), ("0", 1), ("", default), ("many", default)):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert cpu_threads() == threads, value
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cpu_threads() == default
