"""Blob backends: where encrypted bytes live. They never see plaintext or keys.

Both backends honour one contract (tests/test_media_store.py runs it on each):
write is atomic (a reader sees the old bytes, the new bytes or nothing, never a partial file),
read of a missing key raises BlobNotFound, delete is idempotent, a full disk raises StorageFull.
"""
from __future__ import annotations

import errno
import os
import re
import uuid
from pathlib import Path
from typing import Iterator, Protocol

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,199}$")


class StorageError(Exception):
    """The media store could not complete an operation."""


class BlobNotFound(StorageError):
    pass


class StorageFull(StorageError):
    pass


class StorageUnavailable(StorageError):
    """The store cannot be written now (permissions, a read-only mount, a broken folder)."""


def check_key(key: str) -> str:
    if not _KEY_RE.match(key) or ".." in key:
        raise ValueError(f"invalid storage key {key!r}")
    return key


class BlobBackend(Protocol):
    name: str

    def write(self, key: str, data: bytes) -> None: ...
    def read(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def keys(self, older_than: float) -> Iterator[str]: ...  # keys last written before this Unix time


class FilesystemBlobs:
    """Files under a root folder, written via a temporary file + fsync + rename."""

    name = "filesystem"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _private_dirs(self, folder: Path) -> None:
        """Creates the missing folders between root and folder, each 0700 (a subject's media
        folder is nobody else's business), whatever the umask."""
        missing = []
        while folder != self.root and not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for f in reversed(missing):
            try:
                f.mkdir(mode=0o700)
            except FileExistsError:
                if not f.is_dir():
                    raise
                continue
            os.chmod(f, 0o700)

    def write(self, key: str, data: bytes) -> None:
        final = self.path(key)
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        try:
            self._private_dirs(final.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("media store is full; nothing was written") from exc
            raise StorageUnavailable(f"could not write media: {exc.strerror}") from exc

    def read(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        if key.startswith("health/"):  # the readiness probe's own folder goes with its blob
            try:
                path.parent.rmdir()
            except OSError:
                pass

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def keys(self, older_than: float) -> Iterator[str]:
        for folder, _, files in os.walk(self.root):
            for name in files:
                if name.startswith("."):  # a .tmp file: a write under way
                    continue
                path = Path(folder) / name
                try:
                    written = path.stat().st_mtime
                except FileNotFoundError:  # deleted meanwhile
                    continue
                if written < older_than:
                    yield path.relative_to(self.root).as_posix()


class S3Blobs:
    """An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, …) through boto3."""

    name = "s3"

    def __init__(self, bucket: str, endpoint_url: str | None = None, region: str = "us-east-1",
                 access_key: str | None = None, secret_key: str | None = None, prefix: str = ""):
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=BotoConfig(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
        )

    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def write(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:  # a single PUT is atomic in S3: readers never see a partial object
            self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not write media to bucket {self.bucket}: {exc}") from exc

    def read(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise BlobNotFound(key) from exc
            raise StorageError(f"could not read media: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read media: {exc}") from exc

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError:
            return False

    def keys(self, older_than: float) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["LastModified"].timestamp() < older_than:
                    yield obj["Key"][len(self.prefix):]
