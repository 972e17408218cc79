"""The consent gate: every failing condition refuses; backends accept only grants; a grant fails at
its next use once consent is revoked; scripts are screened."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from avatar.domain import review
from avatar.domain.actor import Actor
from avatar.domain.gate import GateRefused, ReauthRequired
from avatar.domain.scripts import ScriptRefused, screen
from avatar.store.db import utcnow
from avatar.store.models import Consent, Delegation, Enrollment, User
from avatar.synthesis.grant import ConsentGrant, GrantError
from avatar.synthesis.speech.offline import OfflineSpeech
from avatar.synthesis.video.offline import MeshTalkingHead
from tests.conftest import STRONG_PASSWORD
from tests.likeness_factory import approved_likeness


@pytest.fixture
def subject(services, shared_data):
    return approved_likeness(services, shared_data)


def _other(services, email="other@example.org"):
    from avatar.domain.accounts import register

    with services.db.session_scope() as s:
        return register(s, email, "Oth Er", STRONG_PASSWORD).id


def test_grant_for_the_subject(services, subject):
    grant = services.gate.grant(subject, subject, "video", "personal", utcnow())
    assert isinstance(grant, ConsentGrant) and grant.modality == "video"
    likeness = grant.likeness()
    assert likeness.face.shape == (256, 256, 3) and likeness.voice.size > 16000 * 10
    assert likeness.voice_analysis is None  # a profile without a stored analysis of its voice


def test_the_grant_hands_out_the_stored_analysis_of_the_voice(services, subject):
    from avatar.store.models import VoiceProfile

    with services.db.session_scope() as s:
        vp = s.scalar(sa.select(VoiceProfile).where(VoiceProfile.user_id == subject))
        vp.analysis_media_id = services.media.put(s, subject, "voice_analysis", b"analysis bytes",
                                                  "application/octet-stream").id
    likeness = services.gate.grant(subject, subject, "speech", "personal", utcnow()).likeness()
    assert likeness.voice_analysis == b"analysis bytes"  # decrypted; the backend checks it fits the voice


def _set(services, subject, **changes):
    with services.db.session_scope() as s:
        enr = s.scalar(sa.select(Enrollment).where(Enrollment.user_id == subject))
        consent = s.scalar(sa.select(Consent).where(Consent.user_id == subject))
        for key, value in changes.items():
            target, attr = key.split("__")
            setattr(enr if target == "enr" else consent, attr, value)


@pytest.mark.parametrize("changes,modality,purpose,message", [
    ({"enr__state": "submitted"}, "video", "personal", "not approved"),
    ({"enr__state": "revoked"}, "speech", "personal", "not approved"),
    ({"consent__revoked_at": utcnow()}, "speech", "personal", "withdrawn"),
    ({"consent__expires_at": utcnow() - timedelta(seconds=1)}, "speech", "personal", "expired"),
    ({"consent__scopes": ["voice"]}, "video", "personal", "face"),
    ({"consent__scopes": ["face"]}, "speech", "personal", "voice"),
    ({}, "speech", "political", "political"),
    ({}, "hologram", "personal", "modality"),
])
def test_gate_refuses(services, subject, changes, modality, purpose, message):
    _set(services, subject, **changes)
    with pytest.raises(GateRefused, match=message):
        services.gate.grant(subject, subject, modality, purpose, utcnow())


def test_gate_needs_a_recent_login(services, subject):
    with pytest.raises(ReauthRequired):
        services.gate.grant(subject, subject, "speech", "personal", utcnow() - timedelta(minutes=16))
    with pytest.raises(ReauthRequired):
        services.gate.grant(subject, subject, "speech", "personal", None)


def test_someone_else_needs_a_delegation(services, subject):
    other = _other(services)
    with pytest.raises(GateRefused, match="delegated"):
        services.gate.grant(other, subject, "speech", "personal", utcnow())
    with services.db.session_scope() as s:
        s.add(Delegation(subject_id=subject, delegate_id=other, modalities=["speech"], purposes=["personal"]))
    assert services.gate.grant(other, subject, "speech", "personal", utcnow()).requester_id == other
    with pytest.raises(GateRefused, match="does not cover video"):
        services.gate.grant(other, subject, "video", "personal", utcnow())
    with services.db.session_scope() as s:
        s.scalar(sa.select(Delegation)).revoked_at = utcnow()
    with pytest.raises(GateRefused, match="delegated"):
        services.gate.grant(other, subject, "speech", "personal", utcnow())


def test_backends_accept_only_grants(services, subject, shared_data):
    with pytest.raises(TypeError, match="only by the consent gate"):
        ConsentGrant(object(), requester_id=subject, subject_id=subject, subject_pseudonym="x", consent_id=1,
                     modality="speech", purpose="personal", issued_at=utcnow(), check=lambda: None, load=None)
    with services.db.session_scope() as s:
        user = s.get(User, subject)
        for bare in (subject, str(shared_data / "voices/1688/1688-142285-0000.flac"), user):
            with pytest.raises(GrantError, match="consent grant is required"):
                OfflineSpeech().synthesize(bare, "hello")
            with pytest.raises(GrantError, match="consent grant is required"):
                next(MeshTalkingHead().frames(bare, None))


def test_a_grant_fails_at_its_next_use_after_revocation(services, subject):
    grant = services.gate.grant(subject, subject, "speech", "personal", utcnow())
    grant.ensure_valid()
    with services.db.session_scope() as s:
        review.revoke(s, services.media, s.get(User, subject), subject, "I changed my mind", by=Actor("web", user_id=subject))
    with pytest.raises(GrantError, match="withdrawn|not approved"):
        grant.likeness()
    with pytest.raises(GrantError):
        OfflineSpeech().synthesize(grant, "hello there")


def test_scripts_are_screened():
    assert screen("  Happy birthday,\x00 Anna!  See you at the party. ", "personal") == \
        "Happy birthday, Anna! See you at the party."
    for text, purpose, why in [("", "personal", "empty"), ("a" * 1001, "personal", "limit"),
                               ("Vote for Smith on Sunday", "personal", "political"),
                               ("Buy now with promo code SAVE", "personal", "marketing"),
                               ("This is not AI, it is really me", "personal", "not AI")]:
        with pytest.raises(ScriptRefused, match=why):
            screen(text, purpose)
    assert screen("Vote for Smith on Sunday", "political")


def test_spoken_notice_is_added_after_screening(services, subject):
    from avatar.domain import generation

    with services.db.session_scope() as s:
        gen = generation.request(s, services.gate, subject, subject, "speech", "personal", "See you soon.", utcnow(),
                                 "offline", spoken_notice=True, by=Actor("web", user_id=subject))
        assert gen.script == f"See you soon. {generation.SPOKEN_NOTICE}"
