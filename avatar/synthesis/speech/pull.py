"""Fetching the XTTS-v2 model folder with its checksums verified (`avatar models pull xtts-v2`).

Where the files come from: a Hugging Face style server (`<base>/<repo>/resolve/<revision>/<file>`),
by default https://huggingface.co/coqui/XTTS-v2, or a mirror given by --base-url. What is checked:
- the hash the server publishes for each file: for large (LFS) files the SHA-256 in the
  `X-Linked-Etag` header, for small files the git blob SHA-1 in `ETag`; a file whose bytes do not
  hash to it is refused;
- the pinned checksums in the folder's `checksums.json` lock, when one is given or already there
  (written on the first verified pull, so later pulls and `avatar models verify` detect any change).
Files are downloaded to a temporary folder next to the target and moved in only when every one of
them verified: a failed pull leaves the target as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASE = "https://huggingface.co"
MODELS = {"xtts-v2": {"repo": "coqui/XTTS-v2", "files": ["config.json", "model.pth", "vocab.json", "speakers_xtts.pth"],
                      "optional": ["speakers_xtts.pth"],
                      # the weights' licence (the coqui-tts code is MPL-2.0): non-commercial use only
                      "license": {"name": "Coqui Public Model License 1.0.0", "url": "https://coqui.ai/cpml",
                                  "commercial_use": False}}}
LOCK_NAME = "checksums.json"
CHUNK = 1 << 20


class PullError(Exception):
    """The pull failed; the message says which file and why. The target folder is unchanged."""


@dataclass
class Fetched:
    name: str
    sha256: str
    size: int
    published: str  # which published hash it was checked against


def _published(headers) -> tuple[str, str] | None:
    """("sha256"|"git-sha1", hex) from the response headers, if the server publishes one."""
    linked = headers.get("X-Linked-Etag")
    if linked:
        return "sha256", linked.strip('"').removeprefix("W/").strip('"')
    etag = (headers.get("ETag") or "").removeprefix("W/").strip('"')
    if len(etag) == 40 and all(c in "0123456789abcdef" for c in etag):
        return "git-sha1", etag
    if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag):
        return "sha256", etag
    return None


def _download(url: str, dest: Path, timeout: float) -> tuple[str, str, int, tuple[str, str] | None]:
    """Streams url into dest; returns (sha256, git-blob sha1, size, published hash)."""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "avatar-models"})  # noqa: S310 - pull() allows http(s) only
        resp = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - pull() allows http(s) only
    except urllib.error.HTTPError as exc:
        raise PullError(f"{url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise PullError(f"{url}: cannot connect ({getattr(exc, 'reason', exc)})") from exc
    with resp:
        published = _published(resp.headers)
        sha256, size = hashlib.sha256(), 0
        with dest.open("wb") as f:
            while chunk := resp.read(CHUNK):
                sha256.update(chunk)
                size += len(chunk)
                f.write(chunk)
    blob = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)  # the git blob id the hub publishes
    with dest.open("rb") as f:
        while chunk := f.read(CHUNK):
            blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest(), size, published


def read_lock(folder: Path) -> dict[str, str]:
    """The pinned sha256 per file of a folder's lock ({} if it has none)."""
    path = folder / LOCK_NAME
    return read_lock_file(path) if path.is_file() else {}


def read_lock_file(path: Path) -> dict[str, str]:
    try:
        return {k: v["sha256"] for k, v in json.loads(path.read_text())["files"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise PullError(f"{path} is not a checksum lock ({exc})") from exc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def pull(model: str, target: Path, base_url: str = DEFAULT_BASE, revision: str = "main",
         pinned: dict[str, str] | None = None, timeout: float = 60) -> list[Fetched]:
    """Downloads and verifies `model` into `target` (see module doc). Raises PullError."""
    spec = MODELS.get(model)
    if spec is None:
        raise PullError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        raise PullError(f"{base_url}: the base URL must be http:// or https://")
    pinned = dict(pinned or read_lock(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-pull-", dir=target.parent))
    fetched: list[Fetched] = []
    try:
        for name in spec["files"]:
            url = f"{base_url.rstrip('/')}/{spec['repo']}/resolve/{revision}/{name}"
            try:
                sha256, sha1, size, published = _download(url, staging / name, timeout)
            except PullError as exc:
                if name in spec["optional"] and "HTTP 404" in str(exc):
                    continue
                raise
            if published is None and name not in pinned:
                raise PullError(f"{name}: the server publishes no checksum and none is pinned; refusing it")
            if published is not None:
                kind, value = published
                if value != (sha256 if kind == "sha256" else sha1):
                    raise PullError(f"{name}: checksum mismatch: the server publishes {kind} {value}, "
                                    f"the bytes received hash to {sha256 if kind == 'sha256' else sha1}")
            if name in pinned and pinned[name] != sha256:
                raise PullError(f"{name}: sha256 {sha256} differs from the pinned {pinned[name]}")
            fetched.append(Fetched(name, sha256, size, f"{published[0]} (server)" if published else "pinned"))
        (staging / LOCK_NAME).write_text(json.dumps(
            {"model": model, "repo": spec["repo"], "revision": revision, "license": spec["license"],
             "files": {f.name: {"sha256": f.sha256, "size": f.size} for f in fetched}}, indent=2))
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return fetched


def _swap_in(staging: Path, target: Path) -> None:
    """Replaces target by staging with renames only (the old folder is removed last)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        target.rename(old)
    try:
        staging.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def verify_folder(folder: Path) -> dict:
    """Re-hashes the folder's files against its lock: {"ok", "files": {name: "ok"|"changed"|"missing"}}."""
    pinned = read_lock(folder)
    if not pinned:
        raise PullError(f"{folder} has no {LOCK_NAME}; pull the model with `avatar models pull` first")
    files = {}
    for name, digest in pinned.items():
        path = folder / name
        files[name] = "missing" if not path.is_file() else ("ok" if sha256_file(path) == digest else "changed")
    return {"ok": all(v == "ok" for v in files.values()), "files": files}
