import os
import stat

import pytest

from avatar.config import Config, ConfigError


def test_embedded_default_needs_no_variables(tmp_path):
    cfg = Config.from_env(environ={}, overrides={"INSTANCE_PATH": str(tmp_path)})
    assert cfg.DATABASE_URL == f"sqlite:///{tmp_path / 'avatar.db'}"
    assert cfg.MEDIA_PATH == str(tmp_path / "media")
    assert cfg.JOB_RUNNER == "threads"


def test_secrets_are_generated_once_with_0600(tmp_path):
    cfg = Config.from_env(environ={}, overrides={"INSTANCE_PATH": str(tmp_path)})
    key1, master1 = cfg.secret_key(), cfg.master_key()
    assert len(master1) == 32
    for name in ("secret_key", "master.key"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert cfg.secret_key() == key1 and cfg.master_key() == master1


def test_loose_permissions_on_master_key_are_refused(tmp_path):
    cfg = Config.from_env(environ={}, overrides={"INSTANCE_PATH": str(tmp_path)})
    cfg.master_key()
    os.chmod(tmp_path / "master.key", 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        cfg.master_key()


def test_environment_overrides_and_bad_values(tmp_path):
    env = {"AVATAR_INSTANCE_PATH": str(tmp_path), "AVATAR_DATABASE_URL": "postgresql+psycopg://x@h/db",
           "AVATAR_JOB_THREADS": "4", "AVATAR_SECURE_COOKIES": "no"}
    cfg = Config.from_env(environ=env)
    assert cfg.DATABASE_URL.startswith("postgresql") and cfg.JOB_THREADS == 4 and cfg.SECURE_COOKIES is False
    with pytest.raises(ConfigError, match="AVATAR_JOB_THREADS"):
        Config.from_env(environ={"AVATAR_JOB_THREADS": "many"})
    with pytest.raises(ConfigError, match="BROKER_URL"):
        Config.from_env(environ={"AVATAR_JOB_RUNNER": "celery"})
    with pytest.raises(ConfigError, match="AVATAR_SPEECH_SOURCE must be espeak or kokoro"):
        Config.from_env(environ={"AVATAR_SPEECH_SOURCE": "festival"})
    assert Config.from_env(environ={"AVATAR_SPEECH_SOURCE": "kokoro"}).SPEECH_SOURCE == "kokoro"
    with pytest.raises(ConfigError, match="32 bytes"):
        Config.from_env(environ={"AVATAR_MASTER_KEY": "c2hvcnQ="}).master_key()


def test_instance_folder_is_private(tmp_path):
    inst = tmp_path / "fresh" / "instance"
    Config.from_env(environ={}, overrides={"INSTANCE_PATH": str(inst)}).master_key()
    assert stat.S_IMODE(os.stat(inst).st_mode) == 0o700


def test_settings_are_fixed_and_unknown_names_refused(tmp_path):
    import dataclasses

    cfg = Config.from_env(environ={}, overrides={"INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.JOB_RUNNER = "celery"  # type: ignore[misc]
    with pytest.raises(ConfigError, match="unknown setting.*JOB_RUNER"):
        Config.from_env(environ={}, overrides={"INSTANCE_PATH": str(tmp_path), "JOB_RUNER": "none"})
    with pytest.raises(ConfigError, match="CHALLENGE_SEED is for tests only"):
        Config.from_env(environ={}, overrides={"INSTANCE_PATH": str(tmp_path), "CHALLENGE_SEED": 3})


def test_an_unknown_video_backend_is_a_clear_error(tmp_path):
    from click.testing import CliRunner

    from avatar.cli import main
    from avatar.services import Services

    with pytest.raises(ConfigError, match="AVATAR_VIDEO_BACKEND must be one of offline"):
        Services(Config.from_env(environ={}, overrides={"INSTANCE_PATH": str(tmp_path), "VIDEO_BACKEND": "sora"}))
    r = CliRunner().invoke(main, ["jobs", "status"], env={"AVATAR_INSTANCE_PATH": str(tmp_path),
                                                        "AVATAR_VIDEO_BACKEND": "sora"})
    assert r.exit_code == 1 and "AVATAR_VIDEO_BACKEND" in r.output and "Traceback" not in r.output, r.output
