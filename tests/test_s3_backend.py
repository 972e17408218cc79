"""The S3 backend against a local S3-compatible HTTP server (moto's standalone server, run as
its own process on loopback), through the same MediaStore contract as the filesystem backend."""
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from avatar.store.blobs import BlobNotFound, S3Blobs
from avatar.store.crypto import Keyring
from avatar.store.media import MediaShredded, MediaStore
from avatar.store.models import MediaObject
from tests.ports import free_port


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("S3 server did not start")
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
                 aws_secret_access_key="s").create_bucket(Bucket="avatar-media")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3_blobs(s3_endpoint):
    return S3Blobs("avatar-media", s3_endpoint, access_key="k", secret_key="s")


def test_s3_backend_contract(s3_blobs):
    s3_blobs.write("1/a/x", b"one")
    s3_blobs.write("1/a/x", b"two")
    assert s3_blobs.read("1/a/x") == b"two" and s3_blobs.exists("1/a/x")
    assert list(s3_blobs.keys(older_than=time.time() + 5)) == ["1/a/x"]
    assert list(s3_blobs.keys(older_than=time.time() - 60)) == []
    s3_blobs.delete("1/a/x")
    s3_blobs.delete("1/a/x")
    assert not s3_blobs.exists("1/a/x")
    with pytest.raises(BlobNotFound):
        s3_blobs.read("1/a/x")
    with pytest.raises(ValueError):
        s3_blobs.write("../x", b"")


def test_media_store_on_s3_encrypts_and_shreds(services, s3_blobs):
    store = MediaStore(s3_blobs, Keyring(services.keyring.current))
    with services.db.session_scope() as s:
        obj = store.put(s, 11, "voice_ref", b"RIFF voice sample" * 100, "audio/wav")
    raw = s3_blobs.read(obj.storage_key)
    assert b"voice sample" not in raw
    with services.db.session_scope() as s:
        assert store.get(s, s.get(MediaObject, obj.id)) == b"RIFF voice sample" * 100
        store.shred_subject(s, 11)
    assert not s3_blobs.exists(obj.storage_key)
    with services.db.session_scope() as s, pytest.raises(MediaShredded):
        store.get(s, s.get(MediaObject, obj.id))


def test_app_builds_the_s3_backend_from_settings(tmp_path, s3_endpoint):
    from tests.conftest import make_app

    app = make_app(tmp_path, MEDIA_BACKEND="s3", S3_BUCKET="avatar-media", S3_ENDPOINT_URL=s3_endpoint,
                   S3_ACCESS_KEY="k", S3_SECRET_KEY="s")
    resp = app.test_client().get("/readyz").get_json()
    assert resp["checks"]["media"] == {"ok": True, "backend": "s3"}
