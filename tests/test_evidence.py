"""The reviewer's evidence page: plot, key frames, statement audio, guard match image, all audited;
and the page rendered in headless Chromium (screenshot)."""
import shutil

import pytest
import sqlalchemy as sa

from avatar.store.models import AuditEvent, Enrollment
from tests.conftest import SEED, STRONG_PASSWORD, app_on_copy, csrf_token, make_app
from tests.support.enrollment import give_consent, login, run_capture

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def reviewed_instance(tmp_path_factory, passing_clip):
    """An instance where two accounts enrolled with the same capture (the second is flagged by the
    guard) and a reviewer exists: built once for this module's tests (each capture is checked in
    full, seconds of analysis), each test runs on its own copy; (instance folder, enrollment id)."""
    from avatar.domain.accounts import register
    from avatar.store.models import Role

    base = tmp_path_factory.mktemp("reviewed")
    app = make_app(base, CHALLENGE_SEED=SEED)
    client, services = app.test_client(), app.extensions["avatar"]
    try:
        login(client, services, "first@example.org", "First Person")
        assert run_capture(client, services, passing_clip)["passed"] and give_consent(client).status_code == 302
        client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account")})
        b = login(client, services, "second@example.org", "Second Person")
        assert run_capture(client, services, passing_clip)["passed"] and give_consent(client).status_code == 302
        with services.db.session_scope() as s:
            register(s, "rev@example.org", "Re Viewer", STRONG_PASSWORD, role=Role.REVIEWER)
            enr = s.scalar(sa.select(Enrollment).where(Enrollment.user_id == b)).id
    finally:
        services.close()
    return base / "instance", enr


@pytest.fixture
def app(tmp_path, reviewed_instance):
    """The app on a copy of the reviewed instance (its database, media and keys)."""
    app = app_on_copy(reviewed_instance[0], tmp_path, CHALLENGE_SEED=SEED)
    yield app
    app.extensions["avatar"].close()


@pytest.fixture
def reviewed(client, reviewed_instance):
    """The second enrollment's id, with the reviewer logged in."""
    client.post("/auth/login", data={"email": "rev@example.org", "password": STRONG_PASSWORD,
                                     "csrf_token": csrf_token(client)})
    return reviewed_instance[1]


def test_evidence_page_and_media(client, services, reviewed):
    enr = reviewed
    page = client.get(f"/review/{enr}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "MATCH" in html and "First Person" in html and "guard_match" in html
    assert html.count("data:image/jpeg;base64,") >= 3  # one key frame per issued action
    assert "SHA-256" in html and "code issued" in html
    png = client.get(f"/review/{enr}/timeline.png")
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG") and len(png.data) > 20_000
    wav = client.get(f"/review/{enr}/statement.wav")
    assert wav.status_code == 200 and wav.data[:4] == b"RIFF"
    ref = client.get(f"/review/{enr}/guard-match.png")
    assert ref.status_code == 200 and ref.data.startswith(b"\x89PNG")
    # the footage the talking head is made from (here the capture's statement), decrypted for the reviewer
    assert "Footage the talking head is made from" in html and "statement of the live capture" in html
    clip = client.get(f"/review/{enr}/footage.mp4")
    assert clip.status_code == 200 and clip.mimetype == "video/mp4" and clip.data[4:8] == b"ftyp"
    with services.db.session_scope() as s:
        actions = s.scalars(sa.select(AuditEvent.action).where(AuditEvent.target_id == enr)).all()
    assert "review.viewed" in actions and actions.count("review.media_viewed") == 3


@pytest.mark.skipif(not shutil.which("chromedriver"), reason="chromium-driver missing")
def test_evidence_page_renders_in_chromium(app, client, services, reviewed, tmp_path):
    import threading

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    from tests.support.browser import browser

    server = make_server("127.0.0.1", 0, app, threaded=True)  # port 0: no race for a free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    driver = browser("/dev/null", "/dev/null", tmp_path / "profile")
    try:
        driver.get(f"{base}/auth/login")
        driver.find_element(By.NAME, "email").send_keys("rev@example.org")
        driver.find_element(By.NAME, "password").send_keys(STRONG_PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form.stack button").click()
        WebDriverWait(driver, 20).until(lambda d: "Review" in d.page_source)
        driver.get(f"{base}/review/{reviewed}")
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("const i=document.getElementById('timeline'); return i && i.complete && i.naturalWidth > 0"))
        shot = tmp_path / "evidence.png"
        driver.set_window_size(1100, 2200)
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 50_000
        shutil.copy(shot, "/tmp/evidence-page.png")
    finally:
        driver.quit()
        server.shutdown()
