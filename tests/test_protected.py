"""Protected persons through the CLI: protect one identity with two photos; a third photo of that
person matches, photos of the other identities do not."""
import json

from click.testing import CliRunner

from avatar.cli import main

PERSON = ["img1.jpg", "img2.jpg"]  # 8 photos of one identity in shared/data/faces
SAME = ["img4.jpg", "img10.jpg"]
OTHERS = ["img13.jpg", "img16.jpg", "img20.jpg", "img15.jpg", "img17.jpg", "img21.jpg"]


def run(env, *args):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_protect_and_screen(tmp_path, shared_data):
    env = {"AVATAR_INSTANCE_PATH": str(tmp_path / "inst")}
    assert run(env, "db", "upgrade").exit_code == 0
    faces = shared_data / "faces"
    r = run(env, "protect", "add", "Famous Person", *[str(faces / f) for f in PERSON])
    assert r.exit_code == 0 and "2 face(s)" in r.output
    listed = json.loads(run(env, "protect", "list", "--json").output)
    assert listed[0]["name"] == "Famous Person" and listed[0]["faces"] == 2
    for f in SAME:
        out = json.loads(run(env, "guard", "screen", str(faces / f), "--json").output)
        assert out["match"] == "Famous Person" and out["distance"] < 0.6, (f, out)
    for f in OTHERS:
        out = json.loads(run(env, "guard", "screen", str(faces / f), "--json").output)
        assert out["match"] is None and out["distance"] >= 0.6, (f, out)


def test_protect_refuses_bad_samples(tmp_path, shared_data):
    env = {"AVATAR_INSTANCE_PATH": str(tmp_path / "inst")}
    run(env, "db", "upgrade")
    r = run(env, "protect", "add", "Two People", str(shared_data / "faces/couple.jpg"))
    assert r.exit_code == 1 and "2 faces" in r.output
    r = run(env, "protect", "add", "A Dog", str(shared_data / "stills/s25.jpg"))
    assert r.exit_code == 1 and "human" in r.output
    ok = run(env, "protect", "add", "Someone", str(shared_data / "faces/img13.jpg"))
    again = run(env, "protect", "add", "Someone", str(shared_data / "faces/img14.jpg"))
    assert ok.exit_code == 0 and again.exit_code == 1 and "already protected" in again.output


def test_protected_voice(tmp_path, shared_data):
    env = {"AVATAR_INSTANCE_PATH": str(tmp_path / "inst")}
    run(env, "db", "upgrade")
    voices = sorted((shared_data / "voices/2033").glob("*.flac"))
    assert run(env, "protect", "add", "Famous Voice", str(voices[0]), str(voices[1])).exit_code == 0
    same = json.loads(run(env, "guard", "screen", str(voices[5])).output)
    other = json.loads(run(env, "guard", "screen", str(sorted((shared_data / "voices/1688").glob("*.flac"))[0])).output)
    assert same["match"] == "Famous Voice" and same["modality"] == "voice"
    assert other["match"] is None


def test_admin_protected_page_and_audit_filters(client, auth, services, shared_data):
    import io

    from tests.conftest import csrf_token

    auth.create("boss@example.org", role="admin")
    auth.create("user@example.org")
    auth.login(email="user@example.org")
    assert client.get("/admin/protected").status_code == 403
    auth.logout()
    auth.login(email="boss@example.org")
    token = csrf_token(client, "/admin/protected")
    photo = (shared_data / "faces/img1.jpg").read_bytes()
    dog = (shared_data / "stills/s25.jpg").read_bytes()
    bad = client.post("/admin/protected", data={"csrf_token": token, "name": "Dog Owner",
                                                "photos": [(io.BytesIO(dog), "dog.jpg")]},
                      content_type="multipart/form-data")
    assert bad.status_code == 400 and b"human" in bad.data
    ok = client.post("/admin/protected", data={"csrf_token": token, "name": "Famous Person",
                                               "photos": [(io.BytesIO(photo), "a.jpg")]},
                     content_type="multipart/form-data")
    assert ok.status_code == 303
    assert "Famous Person" in client.get("/admin/protected").get_data(as_text=True)
    page = client.get("/admin/audit?action=protected.").get_data(as_text=True)
    assert "protected.added" in page and "auth.login" not in page and "unbroken" in page
    assert "auth.login" in client.get("/admin/audit?action=auth.").get_data(as_text=True)
