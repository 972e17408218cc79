"""Labels the world can read (issue 19): every MP4 and WAV carries C2PA Content Credentials signed
under the instance's own root and the AIGC implicit label of GB 45438; `avatar verify` (here its
API, and the CLI once) reads them with c2pa-python and explains each failure: content changed
after signing, credentials stripped (the watermark still found), another signer."""
import io
import json
import subprocess

import c2pa
import pytest
import sqlalchemy as sa

from avatar.cli import main as cli_main
from avatar.jobs.core import execute
from avatar.store.models import Generation
from avatar.synthesis.label import aigc
from avatar.synthesis.label import content_credentials as cc
from tests.conftest import csrf_token
from tests.likeness_factory import approved_likeness

pytestmark = pytest.mark.slow

SCRIPT = "Hello, this is a note for my sister. See you on Sunday for lunch."


def _generate(client, auth, services, shared_data, modality: str) -> tuple[int, bytes]:
    approved_likeness(services, shared_data)
    auth.login("subject@example.org")
    r = client.post("/generate", data={"csrf_token": csrf_token(client, "/generate"), "modality": modality,
                                       "purpose": "personal", "script": SCRIPT, "notice": "y"})
    assert r.status_code == 303
    with services.db.session_scope() as s:
        gen = s.scalar(sa.select(Generation))
        gen_id, job_id = gen.id, gen.job_id
    assert execute(services, job_id) == "succeeded"
    r = client.get(f"/generate/{gen_id}/download")
    assert r.status_code == 200
    return gen_id, r.data


def _verify(client, data: bytes) -> dict:
    anon = client.application.test_client()
    r = anon.post("/api/verify", data={"file": (io.BytesIO(data), "file.bin")}, content_type="multipart/form-data")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _ffprobe_tags(path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
                         capture_output=True, check=True, text=True).stdout
    return json.loads(out)["format"].get("tags", {})


def _remux(data: bytes, suffix: str, tmp_path) -> bytes:
    """What a platform does to a file it passes on: a copy of the streams in a new container (the
    Content Credentials do not survive it, the watermarks in the content do)."""
    src, dst = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    src.write_bytes(data)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-map", "0", "-c", "copy", "-map_metadata", "-1",
                    str(dst)], check=True)
    return dst.read_bytes()


@pytest.mark.parametrize("modality,mime,suffix", [("speech", "audio/wav", ".wav"), ("video", "video/mp4", ".mp4")])
def test_every_output_carries_credentials_and_label_that_verify_explains(client, auth, services, shared_data, tmp_path,
                                                                          modality, mime, suffix):
    gen_id, data = _generate(client, auth, services, shared_data, modality)
    with services.db.session_scope() as s:
        gen = s.get(Generation, gen_id)
        wm, consent_id = gen.watermark_id, gen.consent_id
    anchors = services.content_credentials.anchors_pem

    # a standard C2PA reader, given this instance's root as its only trust anchor, trusts it
    ctx = c2pa.Context.from_dict({"trust": {"trust_anchors": anchors}, "verify": {"remote_manifest_fetch": False}})
    with ctx, c2pa.Reader(mime, io.BytesIO(data), context=ctx) as reader:
        assert reader.get_validation_state() == "Trusted"
        manifest = reader.get_active_manifest()
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    created = assertions["c2pa.actions.v2"]["actions"][0]
    assert created["action"] == "c2pa.created" and created["softwareAgent"]["name"] == services.config.SERVICE_NAME
    assert created["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    claims = assertions[cc.GENERATION_ASSERTION]
    assert claims["generation_id"] == gen_id and claims["consent_id"] == consent_id
    assert claims["subject"] and "Sub" not in json.dumps(claims)  # a pseudonym, never the person's name
    assert assertions["c2pa.soft-binding"] == {"alg": cc.SOFT_BINDING_ALG, "blocks": [{"scope": {}, "value": wm}]}

    # the AIGC implicit label, as ffprobe reads it from the file's metadata
    path = tmp_path / f"out{suffix}"
    path.write_bytes(data)
    label = aigc.parse(_ffprobe_tags(path).get("AIGC"))
    assert label["Label"] == "1" and label["ProduceID"] == str(gen_id)
    assert label["ContentProducer"] == services.config.SERVICE_NAME and label["ReservedCode1"]
    assert label["ContentPropagator"] == label["PropagateID"] == label["ReservedCode2"] == ""

    # as delivered: ours on every count
    report = _verify(client, data)
    assert report["generated"] and report["generation_id"] == gen_id
    assert report["content_credentials"]["ours"] and report["content_credentials"]["watermark_id"] == wm
    assert report["aigc_label"]["present"] and report["aigc_label"]["bound"]
    assert "valid and signed under this installation's root" in report["finding"]

    # tampered: bytes of the content changed after signing
    tampered = bytearray(data)
    for i in range(len(data) // 2, len(data) // 2 + 64):
        tampered[i] ^= 0x5A
    report = _verify(client, bytes(tampered))
    assert report["content_credentials"]["state"] == "Invalid" and not report["content_credentials"]["ours"]
    assert "changed after it was signed" in report["finding"]

    # stripped and re-packed: no credentials left, the watermark still names the generation
    stripped = _remux(data, suffix, tmp_path)
    report = _verify(client, stripped)
    assert report["content_credentials"]["present"] is False
    assert report["generated"] and report["generation_id"] == gen_id
    assert "stripped; the watermark still leads to generation" in report["finding"]
    assert not report["aigc_label"]["present"]  # the platform dropped the metadata too

    # signed again by another root (e.g. someone re-signing our output as theirs): valid, not ours
    other_root, other_root_key = cc.issue_root("Elsewhere")
    other = cc.Credentials(*cc.issue_signer(other_root, other_root_key, "Elsewhere"), other_root)
    foreign = cc.embed(stripped, mime, other, generation={"generation_id": gen_id}, watermark_id=wm,
                       service="Elsewhere", version="1")
    report = _verify(client, foreign)
    assert report["content_credentials"]["state"] == "Valid" and not report["content_credentials"]["ours"]
    assert "signed by someone else" in report["finding"]


def test_a_file_signed_under_another_root_is_not_ours(client, services, shared_data, tmp_path):
    """Content Credentials that claim one of our generation ids, on a file without our watermark,
    signed by a chain of someone else's, make nothing ours; nor does a label with a forged binding."""
    wav = (shared_data / "digits_read").glob("*.wav").__next__().read_bytes()
    other_root, other_root_key = cc.issue_root("Avatar")  # even under our service's name
    other = cc.Credentials(*cc.issue_signer(other_root, other_root_key, "Avatar"), other_root)
    label = {**aigc.make("Avatar", "1", "AAAAAAAA", _other_key()), "ReservedCode1": "Zm9yZ2Vk"}
    signed = cc.embed(aigc.wav_with_label(wav, label), "audio/wav", other, generation={"generation_id": 1},
                      watermark_id="AAAAAAAA", service="Avatar", version="1")
    report = _verify(client, signed)
    assert not report["generated"] and report["generation_id"] is None
    assert report["content_credentials"]["state"] == "Valid" and not report["content_credentials"]["ours"]
    assert report["aigc_label"]["present"] and not report["aigc_label"]["bound"]
    # a label signed with another instance's key does not bind either
    assert not aigc.bound(aigc.make("Avatar", "1", "AAAAAAAA", _other_key()), "AAAAAAAA",
                          services.label_keys())


def _other_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def test_instance_credentials_are_made_once_private_and_rotated_under_the_same_root(tmp_path):
    first = cc.instance_credentials(tmp_path, "Avatar")
    assert cc.instance_credentials(tmp_path, "Avatar") == first
    for name in (cc.ROOT_KEY, cc.SIGNER_KEY):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0
    serial = cc.reissue_signer(tmp_path, "Avatar")
    again = cc.instance_credentials(tmp_path, "Avatar")
    assert again.anchors_pem == first.anchors_pem and again.chain_pem != first.chain_pem and serial


def test_deployment_credentials_come_from_the_environment_all_or_none():
    from avatar.config import Config, ConfigError

    root, root_key = cc.issue_root("Studio")
    cert, key = cc.issue_signer(root, root_key, "Studio")
    cfg = Config.from_env(environ={"AVATAR_C2PA_CERT": cert, "AVATAR_C2PA_KEY": key, "AVATAR_C2PA_TRUST_ANCHORS": root})
    assert cfg.C2PA_CERT == cert
    with pytest.raises(ConfigError, match="AVATAR_C2PA_KEY"):
        Config.from_env(environ={"AVATAR_C2PA_CERT": cert})
    with pytest.raises(ConfigError, match="PEM"):
        Config.from_env(environ={"AVATAR_C2PA_CERT": "/etc/cert.pem", "AVATAR_C2PA_KEY": key,
                                 "AVATAR_C2PA_TRUST_ANCHORS": root})


def test_cli_verify_reports_the_credentials_and_the_label(client, auth, services, shared_data, tmp_path, monkeypatch):
    from click.testing import CliRunner

    gen_id, data = _generate(client, auth, services, shared_data, "speech")
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    for name in ("INSTANCE_PATH", "DATABASE_URL", "MEDIA_PATH", "WATERMARK_KEY", "MASTER_KEY"):
        value = getattr(services.config, name)
        if value:
            monkeypatch.setenv(f"AVATAR_{name}", str(value))
    r = CliRunner().invoke(cli_main, ["verify", str(path), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["generation_id"] == gen_id and report["content_credentials"]["ours"] and report["aigc_label"]["bound"]
    r = CliRunner().invoke(cli_main, ["verify", str(path)])
    assert "Content Credentials Trusted (ours)" in r.output and "AIGC label bound to the content" in r.output


def test_keys_rotate_reissues_the_signer_under_the_same_root_and_audits_it(services, monkeypatch):
    from click.testing import CliRunner

    from avatar.store.models import AuditEvent

    for name in ("INSTANCE_PATH", "DATABASE_URL", "MEDIA_PATH", "WATERMARK_KEY", "MASTER_KEY"):
        if getattr(services.config, name):
            monkeypatch.setenv(f"AVATAR_{name}", str(getattr(services.config, name)))
    before = services.content_credentials
    r = CliRunner().invoke(cli_main, ["keys", "rotate", "--only", "c2pa"])
    assert r.exit_code == 0, r.output
    assert "new C2PA signing certificate" in r.output and "master key" not in r.output
    after = cc.instance_credentials(services.config.INSTANCE_PATH, services.config.SERVICE_NAME)
    assert after.anchors_pem == before.anchors_pem and after.chain_pem != before.chain_pem
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "keys.c2pa_signer_reissued"))
    monkeypatch.setenv("AVATAR_C2PA_CERT", before.chain_pem)
    monkeypatch.setenv("AVATAR_C2PA_KEY", before.key_pem)
    monkeypatch.setenv("AVATAR_C2PA_TRUST_ANCHORS", before.anchors_pem)
    r = CliRunner().invoke(cli_main, ["keys", "rotate", "--only", "c2pa"])
    assert r.exit_code == 1 and "certificate authority" in r.output


def test_other_containers_are_not_looked_into():
    """The product delivers MP4 and WAV only; a webm (or anything else) is not parsed for C2PA and
    the finding says nothing about credentials."""
    root, _ = cc.issue_root("Avatar")
    report = cc.read(b"\x1aE\xdf\xa3" + b"\0" * 100, root)
    assert report["read"] is False and report["present"] is False and "error" not in report


def test_an_earlier_instance_keeps_its_label_key(tmp_path):
    """An instance made when the Ed25519 key was named manifest-ed25519.pem keeps that key (renamed),
    so the labels of the outputs it made still bind."""
    from avatar.config import Config
    from avatar.services import Services

    earlier = aigc.load_or_create_key(tmp_path / "manifest-ed25519.pem")
    svc = Services(Config.from_env(environ={"AVATAR_INSTANCE_PATH": str(tmp_path),
                                            "AVATAR_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}))
    try:
        assert svc.label_keys() == [aigc.public_key_b64(earlier)]
        assert (tmp_path / "label-ed25519.pem").is_file() and not (tmp_path / "manifest-ed25519.pem").exists()
    finally:
        svc.close()
