"""XTTS-v2 through Coqui TTS: a tiny random-weight model built here (real weights cannot be
downloaded) and loaded through the real Xtts.load_checkpoint path by the generation job, with the
conditioning latents cached encrypted under the subject's key."""
import pytest
import sqlalchemy as sa

from avatar.demo.tiny_xtts import build
from avatar.domain import generation, review
from avatar.domain.actor import Actor
from avatar.jobs import enqueue
from avatar.jobs.core import execute
from avatar.store.db import utcnow
from avatar.store.models import Generation, MediaObject, User
from avatar.synthesis.label import content_credentials as cc
from avatar.synthesis.speech import choose
from avatar.synthesis.speech.offline import OfflineSpeech
from avatar.synthesis.speech.xtts import XttsSpeech, available
from tests.conftest import make_app
from tests.likeness_factory import approved_likeness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_xtts(tmp_path_factory):
    return build(tmp_path_factory.mktemp("models") / "xtts_v2")


@pytest.fixture
def xtts_app(tmp_path, tiny_xtts):
    app = make_app(tmp_path, XTTS_DIR=str(tiny_xtts))
    yield app
    app.extensions["avatar"].close()


def test_backend_choice(tiny_xtts, tmp_path):
    assert available(tiny_xtts) and isinstance(choose(str(tiny_xtts)), XttsSpeech)
    (tmp_path / "config.json").write_text("{}")  # an incomplete folder falls back to the offline default
    assert isinstance(choose(str(tmp_path)), OfflineSpeech) and isinstance(choose(""), OfflineSpeech)


def test_xtts_generation_through_the_job(xtts_app, shared_data):
    services = xtts_app.extensions["avatar"]
    subject = approved_likeness(services, shared_data, scopes=("voice",))

    def run():
        with services.db.session_scope() as s:
            gen = generation.request(s, services.gate, subject, subject, "speech", "personal",
                                     "hello this is a test", utcnow(), "offline", by=Actor("web", user_id=subject))
            gen_id = gen.id
        job_id = enqueue(services, "generation.render", {"generation_id": gen_id}, owner_id=subject,
                         subject_id=subject, max_attempts=1)
        assert execute(services, job_id) == "succeeded"
        return gen_id

    first = run()
    with services.db.session_scope() as s:
        gen = s.get(Generation, first)
        assert gen.backend == "xtts-v2" and cc.generation_of(gen.manifest)["backend"] == "xtts-v2"
        wav = services.media.get(s, s.get(MediaObject, gen.output_media_id))
        cached = s.scalars(sa.select(MediaObject).where(MediaObject.kind == "xtts_latents")).all()
        assert wav[:4] == b"RIFF" and len(cached) == 1 and cached[0].subject_id == subject
        raw = services.media.blobs.read(cached[0].storage_key)
        assert b"voice_sha256" not in raw  # stored encrypted
    run()  # the second generation reuses the cached latents
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(MediaObject.id)).where(MediaObject.kind == "xtts_latents")) == 1
        review.revoke(s, services.media, s.get(User, subject), subject, "withdrawn", by=Actor("web", user_id=subject))
        assert s.scalar(sa.select(sa.func.count(MediaObject.id)).where(
            MediaObject.kind == "xtts_latents", MediaObject.deleted_at.is_(None))) == 0


class _ModelServer:
    """A loopback Hugging Face style file server for the tiny model: LFS-style X-Linked-Etag
    (SHA-256) for model.pth, git blob SHA-1 ETags for the small files, 404 for the rest."""

    def __init__(self, folder):
        import hashlib
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        self.corrupt: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                if not self.path.startswith("/coqui/XTTS-v2/resolve/main/") or name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                self.send_response(200)
                if name.endswith(".pth"):
                    self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
                else:
                    self.send_header("ETag", f'"{hashlib.sha1(b"blob %d" % len(data) + bytes(1) + data, usedforsecurity=False).hexdigest()}"')
                if name in server.corrupt:
                    data = data[:-1] + bytes([data[-1] ^ 1])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def model_server(tiny_xtts):
    server = _ModelServer(tiny_xtts)
    yield server
    server.close()


def test_models_pull_verifies_checksums_and_never_leaves_a_half_folder(model_server, tmp_path):
    import json

    from click.testing import CliRunner

    from avatar.cli import main
    from avatar.synthesis.speech.xtts import load_model

    target = tmp_path / "models" / "xtts_v2"

    def pull(*extra):
        return CliRunner().invoke(main, ["models", "pull", "xtts-v2", "--dir", str(target),
                                         "--base-url", model_server.url, "--accept-license", *extra])

    # the weights' non-commercial licence is named and must be accepted before anything is fetched
    r = CliRunner().invoke(main, ["models", "pull", "xtts-v2", "--dir", str(target), "--base-url", model_server.url])
    assert r.exit_code == 1 and "Coqui Public Model License" in r.output and "non-commercial" in r.output
    assert not target.exists() and not target.parent.exists()
    model_server.corrupt = {"model.pth"}
    r = pull()
    assert r.exit_code == 1 and "model.pth: checksum mismatch" in r.output and "unchanged" in r.output
    assert not target.exists() and [p.name for p in target.parent.iterdir()] == []  # no staging left behind

    model_server.corrupt = set()
    r = pull()
    assert r.exit_code == 0, r.output
    assert "checked against sha256 (server)" in r.output and "checked against git-sha1 (server)" in r.output
    lock = json.loads((target / "checksums.json").read_text())
    assert set(lock["files"]) == {"config.json", "model.pth", "vocab.json"}  # speakers file is optional (404)
    assert lock["license"]["commercial_use"] is False
    assert available(target) and load_model(target) is not None  # the real loading path reads it

    r = CliRunner().invoke(main, ["models", "verify", "xtts-v2", "--dir", str(target)])
    assert r.exit_code == 0 and json.loads(r.output)["ok"]
    (target / "vocab.json").write_text("{}")
    r = CliRunner().invoke(main, ["models", "verify", "xtts-v2", "--dir", str(target)])
    assert r.exit_code == 1 and json.loads(r.output)["files"]["vocab.json"] == "changed"

    # a pinned lock that the server's files do not match: refused, the folder stays as it was
    pin = tmp_path / "pin.json"
    pin.write_text(json.dumps({"files": {"model.pth": {"sha256": "0" * 64}}}))
    r = pull("--pin", str(pin))
    assert r.exit_code == 1 and "differs from the pinned" in r.output
    assert (target / "vocab.json").read_text() == "{}"
    # unreachable server: a clear error
    r = CliRunner().invoke(main, ["models", "pull", "xtts-v2", "--dir", str(target), "--base-url", "http://127.0.0.1:9",
                                  "--accept-license"])
    assert r.exit_code == 1 and "cannot connect" in r.output
    # only http(s): a file: or other scheme is refused before anything is opened
    r = CliRunner().invoke(main, ["models", "pull", "xtts-v2", "--dir", str(target), "--base-url", "file:///etc",
                                  "--accept-license"])
    assert r.exit_code == 1 and "must be http:// or https://" in r.output
