"""The audit trail is a hash chain: any changed or removed row is found and named."""
import threading

import sqlalchemy as sa

from avatar.store import audit
from avatar.store.models import AuditEvent


def _fill(db, n=6):
    for i in range(n):
        audit.record(db, "test.event", actor_id=i, target_type="thing", target_id=i, details={"i": i})


def test_chain_verifies_and_links(services):
    _fill(services.db)
    report = audit.verify_chain(services.db)
    assert report.ok and report.events == 6
    with services.db.session_scope() as s:
        rows = s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))


def test_changed_row_is_named(services):
    _fill(services.db)
    with services.db.session_scope() as s:
        victim = s.scalar(sa.select(AuditEvent).where(AuditEvent.seq == 3))
        victim.details = '{"i":999}'
        victim_id = victim.id
    report = audit.verify_chain(services.db)
    assert not report.ok and report.first_broken_id == victim_id and "hash" in report.reason


def test_removed_row_is_found(services):
    _fill(services.db)
    with services.db.session_scope() as s:
        s.execute(sa.delete(AuditEvent).where(AuditEvent.seq == 4))
    report = audit.verify_chain(services.db)
    assert not report.ok and report.first_broken_seq == 5 and "missing" in report.reason


def test_rehashed_row_still_breaks_the_next_link(services):
    _fill(services.db)
    with services.db.session_scope() as s:
        victim = s.scalar(sa.select(AuditEvent).where(AuditEvent.seq == 2))
        victim.action = "test.forged"
        victim.hash = audit.event_hash(victim)
    report = audit.verify_chain(services.db)
    assert not report.ok and report.first_broken_seq == 3


def test_concurrent_appends_keep_one_chain(services):
    threads = [threading.Thread(target=_fill, args=(services.db, 10)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = audit.verify_chain(services.db)
    assert report.ok and report.events == 40


def test_cli_audit_verify_exit_codes(app, services):
    from click.testing import CliRunner

    from avatar.cli import main

    _fill(services.db, 3)
    env = {"AVATAR_INSTANCE_PATH": app.config["AVATAR"].INSTANCE_PATH,
           "AVATAR_DATABASE_URL": services.config.DATABASE_URL}
    ok = CliRunner().invoke(main, ["audit", "verify"], env=env)
    assert ok.exit_code == 0 and "3 events" in ok.output
    with services.db.session_scope() as s:
        s.execute(sa.update(AuditEvent).where(AuditEvent.seq == 2).values(actor_id=77))
        broken_id = s.scalar(sa.select(AuditEvent.id).where(AuditEvent.seq == 2))
    bad = CliRunner().invoke(main, ["audit", "verify"], env=env)
    assert bad.exit_code == 1 and f"event id {broken_id}" in bad.output


def test_an_action_and_its_event_are_committed_together_or_not_at_all(any_db_url, tmp_path):
    """commit_with (what web handlers use): the action's rows and the audit event share one
    transaction; if it fails, neither is saved and the chain stays whole."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from avatar.domain.accounts import register
    from avatar.store.models import User
    from tests.conftest import STRONG_PASSWORD, make_app

    app = make_app(tmp_path, DATABASE_URL=any_db_url)
    db = app.extensions["avatar"].db
    _fill(db, 2)
    s = db.factory()
    user = register(s, "ada@example.org", "Ada", STRONG_PASSWORD)
    ev = audit.commit_with(s, "account.registered", target_type="user", target_id=user.id)
    s.close()
    assert ev.seq == 3
    s = db.factory()
    s.add(User(email="ada@example.org", full_name="Twin", password_hash="x", pseudonym="twin0001"))
    with pytest.raises(IntegrityError):  # the action fails at commit time: its event goes with it
        audit.commit_with(s, "account.registered", target_type="user", target_id=999)
    s.close()
    with db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(User)) == 1
        assert [e.action for e in s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq))] == \
            ["test.event", "test.event", "account.registered"]
    assert audit.verify_chain(db).ok
    app.extensions["avatar"].close()
