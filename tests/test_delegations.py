"""Delegations through the account page: only within one's own consent, after a recent log-in, revocable
at once (the gate refuses the delegate from then on), and only by the subject who gave them."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from avatar.domain import DomainError
from avatar.domain import delegations as rules
from avatar.domain.actor import Actor
from avatar.domain.gate import GateRefused, ReauthRequired
from avatar.store.db import utcnow
from avatar.store.models import AuditEvent, Delegation, User
from tests.conftest import STRONG_PASSWORD, csrf_token
from tests.likeness_factory import approved_likeness


@pytest.fixture
def people(services, shared_data):
    from avatar.domain.accounts import register

    subject = approved_likeness(services, shared_data, scopes=("face", "voice"), purposes=("personal",))
    with services.db.session_scope() as s:
        helper = register(s, "helper@example.org", "Hel Per", STRONG_PASSWORD).id
        stranger = register(s, "stranger@example.org", "Stran Ger", STRONG_PASSWORD).id
    return subject, helper, stranger


def _login(client, email):
    client.post("/auth/login", data={"email": email, "password": STRONG_PASSWORD, "csrf_token": csrf_token(client)})


def _delegate(client, email="helper@example.org", modality=("speech",), purpose=("personal",), days="30"):
    token = csrf_token(client, "/account/delegations")
    return client.post("/account/delegations", data={"csrf_token": token, "email": email, "modality": list(modality),
                                                     "purpose": list(purpose), "days": days})


def test_delegation_page_grants_and_revokes(client, services, people):
    subject, helper, _ = people
    _login(client, "subject@example.org")
    with pytest.raises(GateRefused):
        services.gate.grant(helper, subject, "speech", "personal", utcnow())
    r = _delegate(client)
    assert r.status_code == 303
    page = client.get("/account/delegations").get_data(as_text=True)
    assert "Hel Per" in page and "Revoke" in page
    assert services.gate.grant(helper, subject, "speech", "personal", utcnow()).requester_id == helper
    with pytest.raises(GateRefused, match="does not cover video"):
        services.gate.grant(helper, subject, "video", "personal", utcnow())
    with services.db.session_scope() as s:
        row = s.scalar(sa.select(Delegation))
        assert (row.subject_id, row.delegate_id, row.modalities, row.purposes) == (subject, helper, ["speech"], ["personal"])
        assert timedelta(days=29) < row.expires_at - utcnow() <= timedelta(days=30)
        delegation_id = row.id
    # the delegate sees the subject on the generation form
    other = client.application.test_client()
    _login(other, "helper@example.org")
    assert f'<option value="{subject}">Sub Ject' in other.get("/generate").get_data(as_text=True)
    assert "Sub Ject" in other.get("/account/delegations").get_data(as_text=True)
    # only the subject can revoke it: for anyone else it does not exist
    r = other.post(f"/account/delegations/{delegation_id}/revoke",
                   data={"csrf_token": csrf_token(other, "/account/delegations")})
    assert r.status_code == 404
    r = client.post(f"/account/delegations/{delegation_id}/revoke",
                    data={"csrf_token": csrf_token(client, "/account/delegations")})
    assert r.status_code == 303
    with pytest.raises(GateRefused, match="delegated"):
        services.gate.grant(helper, subject, "speech", "personal", utcnow())
    assert f'<option value="{subject}">Sub Ject' not in other.get("/generate").get_data(as_text=True)
    with services.db.session_scope() as s:
        actions = s.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("delegation.%"))).all()
        assert actions == ["delegation.created", "delegation.revoked"]


@pytest.mark.parametrize("fields,message", [
    ({"email": "nobody@example.org"}, "register first"),
    ({"email": "subject@example.org"}, "someone else"),
    ({"modality": ()}, "speech, video"),
    ({"modality": ("hologram",)}, "speech, video"),
    ({"purpose": ()}, "purpose"),
    ({"purpose": ("political",)}, "does not cover political"),
    ({"days": "0"}, "1 to 365"),
    ({"days": "400"}, "1 to 365"),
])
def test_bad_delegations_are_refused_and_nothing_is_saved(client, services, people, fields, message):
    _login(client, "subject@example.org")
    r = _delegate(client, **fields)
    assert r.status_code == 400 and message.encode() in r.data
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(Delegation.id))) == 0


def test_delegation_cannot_exceed_consent_or_its_expiry(services, people):
    subject, helper, _ = people
    with services.db.session_scope() as s:
        user = s.get(User, subject)
        with pytest.raises(ReauthRequired):
            rules.create(s, user, "helper@example.org", ["speech"], ["personal"], 30, utcnow() - timedelta(minutes=20), by=Actor("web"))
        row = rules.create(s, user, "helper@example.org", ["video", "speech"], ["personal"], 365, utcnow(), by=Actor("web"))
        # the likeness factory's consent lasts 30 days: the delegation ends with it
        assert row.expires_at - utcnow() <= timedelta(days=30)
        assert row.modalities == ["speech", "video"]


def test_no_delegation_without_an_approved_likeness(services, people):
    _, helper, stranger = people
    with services.db.session_scope() as s:
        with pytest.raises(DomainError, match="approved likeness"):
            rules.create(s, s.get(User, stranger), "helper@example.org", ["speech"], ["personal"], 30, utcnow(), by=Actor("web"))
