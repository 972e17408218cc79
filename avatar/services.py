"""The process's long-lived objects, built once from a Config, shared by web, jobs and CLI."""
from __future__ import annotations

from functools import cached_property

from avatar.config import Config
from avatar.store.blobs import FilesystemBlobs, S3Blobs
from avatar.store.crypto import Keyring
from avatar.store.db import Database
from avatar.store.media import MediaStore


class Services:
    def __init__(self, config: Config):
        from pathlib import Path

        from avatar.analysis.media import set_temp_dir, sweep_temp_dir
        from avatar.config import ConfigError
        from avatar.synthesis.video import BACKENDS

        if config.VIDEO_BACKEND not in BACKENDS:  # checked here: the settings know nothing of synthesis
            raise ConfigError(f"AVATAR_VIDEO_BACKEND must be one of {', '.join(BACKENDS)}, not {config.VIDEO_BACKEND!r}")
        self.config = config
        self.db = Database(config.DATABASE_URL)
        # decoders' temporary copies stay inside the instance; a killed process's are swept here
        tmp = Path(config.INSTANCE_PATH) / "tmp"
        set_temp_dir(tmp)
        sweep_temp_dir(tmp)
        self.runner = None  # set by jobs.runners.start_runner()

    @classmethod
    def from_env(cls, overrides: dict | None = None) -> "Services":
        """Services for the settings of the environment (AVATAR_*); ConfigError names a bad one."""
        return cls(Config.from_env(overrides=overrides))

    @cached_property
    def keyring(self) -> Keyring:
        """The master key, plus the pending one of an interrupted `avatar keys rotate`."""
        from pathlib import Path

        from avatar.store.rotation import pending_key_file, read_key_file

        previous = []
        if not self.config.MASTER_KEY:
            pending = pending_key_file(Path(self.config.INSTANCE_PATH) / "master.key")
            if pending.is_file():
                previous.append(read_key_file(pending))
        return Keyring(self.config.master_key(), previous=previous)

    @cached_property
    def media(self) -> MediaStore:
        cfg = self.config
        if cfg.MEDIA_BACKEND == "s3":
            blobs = S3Blobs(cfg.S3_BUCKET, cfg.S3_ENDPOINT_URL, cfg.S3_REGION, cfg.S3_ACCESS_KEY, cfg.S3_SECRET_KEY)
        else:
            blobs = FilesystemBlobs(cfg.MEDIA_PATH)
        return MediaStore(blobs, self.keyring)

    @cached_property
    def gate(self):
        from avatar.domain.gate import ConsentGate

        return ConsentGate(self.db, self.media)

    @cached_property
    def watermark_key(self) -> bytes:
        return self.config.watermark_key()

    @cached_property
    def webhook_key(self) -> bytes:
        return self.config.webhook_key()

    @cached_property
    def label_key(self):
        """The Ed25519 key that signs the AIGC label's binding to the content (ReservedCode1):
        instance/label-ed25519.pem, created on first use (an instance made before it was named so
        keeps its manifest-ed25519.pem, renamed)."""
        from pathlib import Path

        from avatar.synthesis.label.aigc import load_or_create_key

        folder = Path(self.config.INSTANCE_PATH)
        path, earlier = folder / "label-ed25519.pem", folder / "manifest-ed25519.pem"
        if not path.exists() and earlier.exists():
            earlier.replace(path)
        return load_or_create_key(path)

    @cached_property
    def content_credentials(self):
        """What signs the C2PA Content Credentials: AVATAR_C2PA_* in a deployment, else the
        instance's own root and signer (generated into the instance folder on first use)."""
        from pathlib import Path

        from avatar.synthesis.label import content_credentials as cc

        cfg = self.config
        if cfg.C2PA_CERT:
            return cc.Credentials(cfg.C2PA_CERT, cfg.C2PA_KEY, cfg.C2PA_TRUST_ANCHORS)
        return cc.instance_credentials(Path(cfg.INSTANCE_PATH), cfg.SERVICE_NAME)

    def label_keys(self) -> list[str]:
        """The public keys whose AIGC label signatures count as this installation's (base64, raw Ed25519)."""
        from avatar.synthesis.label.aigc import public_key_b64

        return [public_key_b64(self.label_key)]

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.db.dispose()
