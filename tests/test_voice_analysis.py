"""The offline voice's analysis of an enrolled voice, made once (at enrollment) and stored: a
generation primed with it does not analyse the voice again and says the same thing as one that
does; an analysis that is not this reference's, of another version, or garbage is not used."""
import numpy as np
import pytest

from avatar.synthesis.speech import ReferenceCache, frame_selection, offline, voice_analysis

TEXT = "Please call me back this afternoon."


@pytest.fixture(scope="module")
def enrolled(shared_data):
    from avatar.analysis.evaluation import audio_of_file

    files = sorted((shared_data / "voices/2414").glob("*.flac"))[:2]
    return np.concatenate([audio_of_file(f) for f in files])


@pytest.fixture
def fresh_caches(monkeypatch):
    """This process has analysed no voice yet (as a new worker)."""
    monkeypatch.setattr(offline, "_VOICES", ReferenceCache(offline.VoiceModel, keep=4))
    monkeypatch.setattr(frame_selection, "_BANKS", ReferenceCache(frame_selection.FrameBank, keep=4))


def _grant(voice, analysis=None):
    from datetime import datetime

    from avatar.synthesis.grant import _MINT, ConsentGrant, Likeness

    return ConsentGrant(_MINT, requester_id=0, subject_id=0, subject_pseudonym="t", consent_id=0, modality="speech",
                        purpose="personal", issued_at=datetime.now(), check=lambda: None,
                        load=lambda m: Likeness(voice, None, None, analysis))


def _no_analysis(*args, **kwargs):
    raise AssertionError("the voice was analysed again")


def test_a_stored_analysis_spares_the_generation_and_changes_nothing(enrolled, fresh_caches, monkeypatch):
    stored = offline.analysed_voice(enrolled)
    assert stored is not None and len(stored) < 0.3e6 * enrolled.size / 16000  # float16, compressed: ~0.25 MB/s
    analysed_at_use = offline.OfflineSpeech().synthesize(_grant(enrolled), TEXT).audio
    monkeypatch.setattr(offline, "_VOICES", ReferenceCache(_no_analysis, keep=4))
    monkeypatch.setattr(frame_selection, "_BANKS", ReferenceCache(_no_analysis, keep=4))
    primed = offline.OfflineSpeech().synthesize(_grant(enrolled, stored), TEXT).audio
    assert primed.size == analysed_at_use.size
    # the envelopes were stored as float16: over 0.999 on a 2-core AMD EPYC without AVX-512, 0.9987 with it
    assert np.corrcoef(primed, analysed_at_use)[0, 1] > 0.995


def test_an_analysis_that_is_not_this_voices_is_not_used(enrolled, fresh_caches, monkeypatch):
    stored = offline.analysed_voice(enrolled)
    other = enrolled[: enrolled.size // 2]
    assert not offline.prime_voice(other, stored)  # made from another reference
    assert not offline.prime_voice(enrolled, b"not an analysis")
    assert not offline.prime_voice(enrolled, None)
    with monkeypatch.context() as m:  # only the version: the fresh caches stay in place
        m.setattr(voice_analysis, "VERSION", voice_analysis.VERSION + 1)
        assert not offline.prime_voice(enrolled, stored)  # made by another version of the voice
    assert offline.prime_voice(enrolled, stored)


def test_a_voice_too_short_to_convert_toward_has_no_analysis(enrolled):
    assert offline.analysed_voice(enrolled[:16000]) is None  # 1 s: under the bank's 2 s of speech


def test_profiles_stored_without_an_analysis_get_one_from_the_cli(app, services, shared_data):
    """`avatar admin analyse-voices`: a profile from before analyses were kept gets one (audited), a
    shredded one is left; run again, nothing is left to do."""
    import sqlalchemy as sa
    from click.testing import CliRunner

    from avatar.analysis.media import decode_audio
    from avatar.cli import main
    from avatar.store.models import AuditEvent, MediaObject, VoiceProfile
    from tests.likeness_factory import approved_likeness

    kept = approved_likeness(services, shared_data)  # made as profiles were before: no analysis
    gone = approved_likeness(services, shared_data, email="gone@example.org")
    with services.db.session_scope() as s:
        services.media.shred_subject(s, gone)
    env = {"AVATAR_INSTANCE_PATH": app.config["AVATAR"].INSTANCE_PATH,
           "AVATAR_DATABASE_URL": services.config.DATABASE_URL}
    r = CliRunner().invoke(main, ["admin", "analyse-voices"], env=env)
    assert r.exit_code == 0 and "analysed 1 voice profile(s); 1 left without one" in r.output, r.output
    with services.db.session_scope() as s:
        vp = s.scalar(sa.select(VoiceProfile).where(VoiceProfile.user_id == kept))
        analysis = services.media.get(s, s.get(MediaObject, vp.analysis_media_id))
        reference = services.media.get(s, s.get(MediaObject, vp.reference_media_id))
        event = s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "voice.analysis_added"))
        assert event is not None and event.target_id == vp.id
        assert s.scalar(sa.select(VoiceProfile.analysis_media_id).where(VoiceProfile.user_id == gone)) is None
    assert offline.prime_voice(decode_audio(reference), analysis)
    again = CliRunner().invoke(main, ["admin", "analyse-voices"], env=env)
    assert again.exit_code == 0 and "analysed 0 voice profile(s); 1 left without one" in again.output
