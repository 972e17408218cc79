"""Settings read from the environment (AVATAR_*), with defaults for the embedded mode.

The embedded default needs no variable at all: SQLite and encrypted media under instance/,
jobs in worker threads of the app process. Secrets are generated into instance/ on first use.
"""
from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, fields, replace
from pathlib import Path

from avatar.resources import work_dir


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _env_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Config:
    """One object holding every setting, fixed once read. Field name FOO is read from AVATAR_FOO."""

    INSTANCE_PATH: str = str(work_dir("instance"))
    DATABASE_URL: str = ""  # default: sqlite file in INSTANCE_PATH
    MEDIA_BACKEND: str = "filesystem"  # filesystem | s3
    MEDIA_PATH: str = ""  # default: INSTANCE_PATH/media
    S3_ENDPOINT_URL: str = ""
    S3_BUCKET: str = ""
    S3_REGION: str = "us-east-1"
    S3_ACCESS_KEY: str = ""
    S3_SECRET_KEY: str = ""
    SECRET_KEY: str = ""  # default: generated into INSTANCE_PATH/secret_key
    MASTER_KEY: str = ""  # base64 of 32 bytes; default: generated into INSTANCE_PATH/master.key
    WATERMARK_KEY: str = ""  # base64 of 32 bytes; default: generated into INSTANCE_PATH/watermark.key
    # C2PA Content Credentials: PEM certificate chain (signer first), its private key, and the roots
    # that count as this installation's; all three or none (default: a root and signer generated
    # into INSTANCE_PATH, see synthesis/label/content_credentials.py)
    C2PA_CERT: str = ""
    C2PA_KEY: str = ""
    C2PA_TRUST_ANCHORS: str = ""
    # Webhooks: the key the endpoints' signing secrets are derived from (base64 of 32 bytes; default:
    # generated into INSTANCE_PATH/webhook.key); whether callback URLs may point at loopback, private
    # or link-local addresses (and use plain http): off, for an operator's own network only; the
    # waits between a delivery's attempts (seconds, comma-separated: about a day in all); the
    # seconds an attempt may take
    WEBHOOK_KEY: str = ""
    WEBHOOK_ALLOW_PRIVATE: bool = False
    WEBHOOK_RETRY_SECONDS: str = "5,300,1800,7200,18000,28800,28800"
    WEBHOOK_TIMEOUT_SECONDS: float = 5.0
    JOB_RUNNER: str = "threads"  # threads | celery | none
    JOB_THREADS: int = 2
    JOB_LEASE_SECONDS: int = 60
    JOB_POLL_SECONDS: float = 2.0
    BROKER_URL: str = ""  # e.g. redis://127.0.0.1:6379/0, needed by the celery runner
    MAX_UPLOAD_MB: int = 64
    SECURE_COOKIES: bool = True
    LOGIN_MAX_FAILURES: int = 5
    LOGIN_LOCK_MINUTES: int = 15
    LOGIN_RATE_PER_MINUTE: int = 20
    REGISTER_RATE_PER_HOUR: int = 10  # new accounts per address
    VERIFY_RATE_PER_MINUTE: int = 10  # anonymous file checks per address
    VERIFY_CONCURRENCY: int = 2  # file checks at once per process
    SERVICE_NAME: str = "Avatar"
    GUARD_BACKEND: str = "numpy"  # or faiss (1:N likeness search)
    VIDEO_BACKEND: str = "offline"  # talking-head backend (avatar.synthesis.video.BACKENDS)
    SPEECH_SOURCE: str = "espeak"  # what the offline voice starts from: espeak (espeak-ng) or kokoro (Kokoro-82M)
    XTTS_DIR: str = ""  # XTTS-v2 model folder; empty = models/xtts_v2 (the project's, or ./models for a wheel; used when complete)
    TESTING: bool = False
    # Test-only: fixes the challenge generator. Refused unless TESTING is on.
    CHALLENGE_SEED: int | None = None

    @classmethod
    def from_env(cls, environ: dict | None = None, overrides: dict | None = None) -> "Config":
        """From AVATAR_* variables, then overrides (setting names, as the app factory and tests pass
        them); an override that names no setting is an error, not silently kept."""
        environ = os.environ if environ is None else environ
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides or {}) - names)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values = {}
        for f in fields(cls):
            raw = environ.get(f"AVATAR_{f.name}")
            if raw is not None:
                values[f.name] = _coerce(f.name, f.default, raw)
        values.update(overrides or {})
        cfg = cls(**values)
        inst = Path(cfg.INSTANCE_PATH)
        cfg = replace(cfg, DATABASE_URL=cfg.DATABASE_URL or f"sqlite:///{inst / 'avatar.db'}",
                      MEDIA_PATH=cfg.MEDIA_PATH or str(inst / "media"))
        cfg._check()
        return cfg

    def _check(self) -> None:
        if self.JOB_RUNNER not in {"threads", "celery", "none"}:
            raise ConfigError(f"AVATAR_JOB_RUNNER must be threads, celery or none, not {self.JOB_RUNNER!r}")
        if self.JOB_RUNNER == "celery" and not self.BROKER_URL:
            raise ConfigError("AVATAR_JOB_RUNNER=celery needs AVATAR_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
        if self.SPEECH_SOURCE not in {"espeak", "kokoro"}:
            raise ConfigError(f"AVATAR_SPEECH_SOURCE must be espeak or kokoro, not {self.SPEECH_SOURCE!r}")
        if self.GUARD_BACKEND not in {"numpy", "faiss"}:
            raise ConfigError(f"AVATAR_GUARD_BACKEND must be numpy or faiss, not {self.GUARD_BACKEND!r}")
        if self.CHALLENGE_SEED is not None and not self.TESTING:
            raise ConfigError("AVATAR_CHALLENGE_SEED is for tests only and needs AVATAR_TESTING=1")
        if self.MEDIA_BACKEND not in {"filesystem", "s3"}:
            raise ConfigError(f"AVATAR_MEDIA_BACKEND must be filesystem or s3, not {self.MEDIA_BACKEND!r}")
        if self.MEDIA_BACKEND == "s3" and not self.S3_BUCKET:
            raise ConfigError("AVATAR_MEDIA_BACKEND=s3 needs AVATAR_S3_BUCKET")
        self.webhook_retry_seconds()  # a ConfigError now rather than at the first failed delivery
        if not 0 < self.WEBHOOK_TIMEOUT_SECONDS <= 30:
            raise ConfigError("AVATAR_WEBHOOK_TIMEOUT_SECONDS must be more than 0 and at most 30")
        c2pa = {"AVATAR_C2PA_CERT": self.C2PA_CERT, "AVATAR_C2PA_KEY": self.C2PA_KEY,
                "AVATAR_C2PA_TRUST_ANCHORS": self.C2PA_TRUST_ANCHORS}
        if any(c2pa.values()) and not all(c2pa.values()):
            raise ConfigError(f"set all of {', '.join(c2pa)} (PEM text) or none of them; missing: "
                              f"{', '.join(k for k, v in c2pa.items() if not v)}")
        for name, value in c2pa.items():
            if value and "-----BEGIN " not in value:
                raise ConfigError(f"{name} must be PEM text (-----BEGIN …)")

    # -- secrets -----------------------------------------------------------------------------
    def secret_key(self) -> bytes:
        if self.SECRET_KEY:
            return self.SECRET_KEY.encode()
        return _instance_secret(Path(self.INSTANCE_PATH) / "secret_key", 32)

    def master_key(self) -> bytes:
        if self.MASTER_KEY:
            return _b64_key("MASTER_KEY", self.MASTER_KEY)
        return _instance_secret(Path(self.INSTANCE_PATH) / "master.key", 32)

    def watermark_key(self) -> bytes:
        """The installation's secret for its watermarks (patterns and MAC). Not the master key:
        `avatar keys rotate` leaves it alone, so every output ever made stays readable."""
        if self.WATERMARK_KEY:
            return _b64_key("WATERMARK_KEY", self.WATERMARK_KEY)
        return _instance_secret(Path(self.INSTANCE_PATH) / "watermark.key", 32)

    def webhook_key(self) -> bytes:
        """The secret every webhook endpoint's signing secret is derived from. Not the master key:
        `avatar keys rotate` leaves it alone (receivers would all have to change their secrets)."""
        if self.WEBHOOK_KEY:
            return _b64_key("WEBHOOK_KEY", self.WEBHOOK_KEY)
        return _instance_secret(Path(self.INSTANCE_PATH) / "webhook.key", 32)

    def webhook_retry_seconds(self) -> tuple[float, ...]:
        """The waits before a delivery's second, third, … attempt."""
        try:
            waits = tuple(float(x) for x in self.WEBHOOK_RETRY_SECONDS.split(",") if x.strip())
        except ValueError as exc:
            raise ConfigError(f"AVATAR_WEBHOOK_RETRY_SECONDS must be seconds separated by commas: {exc}") from exc
        if not waits or len(waits) > 20 or any(not 0 <= w <= 86400 for w in waits):
            raise ConfigError("AVATAR_WEBHOOK_RETRY_SECONDS: 1 to 20 waits, each 0 to 86400 seconds")
        return waits


def _b64_key(name: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ConfigError(f"AVATAR_{name} is not valid base64") from exc
    if len(key) != 32:
        raise ConfigError(f"AVATAR_{name} must decode to 32 bytes")
    return key


def _coerce(name: str, default, raw: str):
    try:
        if default is None:  # optional integers (CHALLENGE_SEED)
            return int(raw)
        if isinstance(default, bool):
            return _env_bool(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"AVATAR_{name}: {exc}") from exc
    return raw


def ensure_private_dir(path: Path) -> Path:
    """Creates the folder (and parents) if missing; the folder itself is made 0700."""
    path = Path(path)
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    return path


def _instance_secret(path: Path, nbytes: int) -> bytes:
    """Reads a secret file, creating it (mode 0600, exclusive create) the first time.

    Never logs the value. Raises ConfigError if the file exists with loose permissions.
    """
    ensure_private_dir(path.parent)
    try:
        write_secret_file(path, secrets.token_bytes(nbytes))
    except FileExistsError:
        pass
    return read_secret_file(path, nbytes)


def write_secret_file(path: Path, raw: bytes) -> None:
    """Writes raw bytes as base64 to a new file (mode 0600, exclusive create, synced);
    FileExistsError if it is there already."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(raw))
        fh.flush()
        os.fsync(fh.fileno())


def read_secret_file(path: Path, nbytes: int) -> bytes:
    """The nbytes secret in a base64 file; ConfigError if the file is readable by others or malformed."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{path} must not be readable by group or others (mode {mode:o}); chmod 600 it")
    data = path.read_bytes().strip()
    try:
        key = base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{path} does not hold base64") from exc
    if len(key) != nbytes:
        raise ConfigError(f"{path} must hold {nbytes} bytes of base64")
    return key
