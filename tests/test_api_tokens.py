"""API tokens and the JSON generation API: tokens shown once, work on /api/ only, need no CSRF
(no cookie), stop working when revoked; the OpenAPI document is valid."""
import json
import re

import pytest
import sqlalchemy as sa

from avatar.jobs.core import execute
from avatar.store.models import ApiToken, AuditEvent
from avatar.synthesis.label import content_credentials as cc
from tests.conftest import csrf_token
from tests.likeness_factory import approved_likeness


def _new_token(client, name="laptop script", scopes=("generations",)):
    r = client.post("/account/tokens", data={"csrf_token": csrf_token(client, "/account/tokens"), "name": name,
                                             "scope": list(scopes)})
    assert r.status_code == 200
    return re.search(r"(avt_[\w-]+)", r.get_data(as_text=True)).group(1)


def test_openapi_document_is_valid(client):
    from openapi_spec_validator import validate

    doc = client.get("/api/openapi.json").get_json()
    validate(doc)
    assert {"/api/generations", "/api/verify", "/api/generations/{generation_id}/download"} <= set(doc["paths"])


def test_every_example_in_the_contract_fits_its_schema_and_every_event_is_described(client):
    """Examples that drift from their schema would teach integrators the wrong thing."""
    from jsonschema import Draft202012Validator

    from avatar.domain.webhooks import EVENTS

    doc = client.get("/api/openapi.json").get_json()
    operations = [op for item in doc["paths"].values() for op in item.values()]
    operations += [item["post"] for item in doc["webhooks"].values()]
    checked = 0
    for op in operations:
        bodies = [(op.get("requestBody") or {}).get("content") or {}]
        bodies += [resp.get("content") or {} for resp in op["responses"].values()]
        for content in bodies:
            for media in content.values():
                if "example" in media:
                    Draft202012Validator(media["schema"]).validate(media["example"])
                    checked += 1
    assert checked >= 10
    assert set(doc["webhooks"]) == set(EVENTS)
    assert {p["name"] for p in doc["webhooks"]["generation.ready"]["post"]["parameters"]} == {
        "webhook-id", "webhook-timestamp", "webhook-signature"}


def test_the_contract_has_a_page_of_its_own(client):
    """/api/docs renders every operation of the contract with its answers, from the app alone."""
    doc = client.get("/api/openapi.json").get_json()
    page = client.get("/api/docs").get_data(as_text=True)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert f"{method.upper()} {path}" in page
            assert all(f"<dt>{status}</dt>" in page for status in op["responses"])
    for event in doc["webhooks"]:
        assert f"<code>{event}</code>" in page
    assert "webhook-signature" in page and '"spoken_notice": true' in page  # examples shown
    assert "<script" not in page.split("</nav>")[-1]
    assert "https://" not in page.replace("https://hooks.example.com/avatar", "")  # no CDN, only the example


def test_bad_tokens_and_paths(client, auth):
    auth.register()
    auth.login()
    token = _new_token(client)
    bare = client.application.test_client()
    assert bare.get("/api/generations", headers={"Authorization": "Bearer avt_nope"}).status_code == 401
    assert bare.get("/account", headers={"Authorization": f"Bearer {token}"}).status_code == 401  # /api/ only
    r = bare.get("/api/generations", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.get_json() == {"generations": []}
    # a browser session still needs CSRF on the same endpoint
    assert client.post("/api/generations", json={"modality": "speech"}).status_code == 400
    page = client.get("/account/tokens").get_data(as_text=True)
    assert token not in page  # shown once only
    token_id = int(re.search(r"/account/tokens/(\d+)/revoke", page).group(1))
    r = client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens")})
    assert r.status_code == 303
    assert bare.get("/api/generations", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.post("/account/tokens", data={"csrf_token": csrf_token(client, "/account/tokens"),
                                                "name": "  "}).status_code == 400


@pytest.mark.slow
def test_generation_through_the_api_with_a_token(client, auth, services, shared_data):
    approved_likeness(services, shared_data)
    auth.login("subject@example.org")
    bare = client.application.test_client()
    headers = {"Authorization": f"Bearer {_new_token(client)}"}
    r = bare.post("/api/generations", json={"modality": "speech", "purpose": "marketing", "script": "Hello there"},
                  headers=headers)
    assert r.status_code == 403 and "marketing" in r.get_json()["error"]
    r = bare.post("/api/generations", json={"modality": "speech", "purpose": "personal", "script": 42}, headers=headers)
    assert r.status_code == 400
    r = bare.post("/api/generations", json={"modality": "speech", "purpose": "personal",
                                            "script": "Hello, this is a note for my sister. See you on Sunday."},
                  headers=headers)
    assert r.status_code == 202, r.get_json()
    gen_id, job_id = r.get_json()["generation_id"], r.get_json()["job_id"]
    assert bare.get(f"/api/generations/{gen_id}", headers=headers).get_json()["download_url"] is None
    assert execute(services, job_id) == "succeeded"
    info = bare.get(f"/api/generations/{gen_id}", headers=headers).get_json()
    assert info["job"]["state"] == "succeeded"
    assert bare.get(info["download_url"], headers=headers).data[:4] == b"RIFF"
    assert cc.generation_of(bare.get(info["manifest_url"], headers=headers).get_json())["generation_id"] == gen_id
    assert bare.get(info["download_url"]).status_code == 401
    # the request's audit event names the door it came through: the API, with this token
    with services.db.session_scope() as s:
        ev = s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "generation.requested"))
        token_id = s.scalar(sa.select(ApiToken.id))
        details = json.loads(ev.details)
        assert details["via"] == "api" and details["token"] == token_id and ev.target_id == gen_id
        assert ev.actor_id == s.get(ApiToken, token_id).user_id and ev.ip
