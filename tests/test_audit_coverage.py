"""Every state-changing entry point appends its audit event (issue 17 item 1): each state-changing
route, CLI command and job is in a table with the audit actions it appends (or why it appends
none), the table fails when a new one has no entry, and each named action is appended by the
code of that entry point (its function, or the helper it goes through). The behaviour (the event
committed with the action) is tested where each action is: test_hostile_uploads (one upload, one
transaction, the broker down), test_audit, test_review, test_periodic_jobs, test_generation, …"""
import importlib
import inspect

import click
import pytest

from avatar.cli import main as cli_main
from avatar.jobs import definitions  # noqa: F401 - registers every job
from avatar.jobs.core import REGISTRY

READS_ONLY = "reads, changes nothing"

ROUTES = {
    "admin.assisted": ("enrollment.assisted_started",),
    "admin.end_assisted": ("enrollment.assisted_left",),
    "admin.protected": ("protected.added",),
    "admin.set_role": ("admin.role_changed",),
    "api.job_cancel": ("job.cancel_requested",),
    "api_generations.create_generation": ("generation.requested",),
    "auth.change_password": ("account.password_changed",),
    "auth.confirm": ("auth.reauthenticated",),
    "auth.login": ("auth.login", "auth.login_failed"),
    "auth.logout": ("auth.logout",),
    "auth.register": ("account.registered", "account.register_taken"),
    "account.delegations": ("delegation.created",),
    "account.revoke_delegation": ("delegation.revoked",),
    "enroll.consent": ("enrollment.consented", "enrollment.submitted"),
    "enroll.new_session": ("enrollment.challenge_issued",),
    "enroll.upload_paragraph": ("enrollment.voice_extra_uploaded",),
    "enroll.upload_reading": ("enrollment.reading_uploaded",),
    "enroll.upload_recording": ("enrollment.capture_uploaded",),
    "generate.index": ("generation.requested",),
    "generate.verify_api": READS_ONLY,  # the uploaded file is read and forgotten
    "generate.verify_page": READS_ONLY,
    "review.decide": ("review.{decision}",),  # review.approve, review.reject
    "account.delete": ("account.deleted",),
    "account.withdraw": ("enrollment.revoked",),
    "review.revoke_user": ("enrollment.revoked",),
    "account.tokens": ("token.created",),
    "account.revoke_token": ("token.revoked",),
    "webhooks.page": ("webhook.created",),
    "webhooks.api_create": ("webhook.created",),
    "webhooks.rotate": ("webhook.secret_rotated",),
    "webhooks.api_rotate": ("webhook.secret_rotated",),
    "webhooks.delete": ("webhook.deleted",),
    "webhooks.api_delete": ("webhook.deleted",),
}
# where a route's event is appended by a helper it calls, or by the domain action itself (an Actor
# passed in, the event appended to the action's transaction, the route's one commit after it)
THROUGH = {"generate.index": ("avatar.web.generate.submit", "avatar.domain.generation.request"),
           "api_generations.create_generation": ("avatar.web.generate.submit", "avatar.domain.generation.request"),
           "account.tokens": ("avatar.web.account._create_token", "avatar.domain.tokens.create"),
           "account.revoke_token": ("avatar.domain.tokens.revoke",),
           "webhooks.page": ("avatar.web.webhooks._create_from_form", "avatar.web.webhooks._create",
                             "avatar.domain.webhooks.create_endpoint"),
           "webhooks.api_create": ("avatar.web.webhooks._create", "avatar.domain.webhooks.create_endpoint"),
           "webhooks.rotate": ("avatar.domain.webhooks.rotate_secret",),
           "webhooks.api_rotate": ("avatar.domain.webhooks.rotate_secret",),
           "webhooks.delete": ("avatar.domain.webhooks.delete_endpoint",),
           "webhooks.api_delete": ("avatar.domain.webhooks.delete_endpoint",),
           "account.delegations": ("avatar.domain.delegations.create",),
           "account.revoke_delegation": ("avatar.domain.delegations.revoke",),
           "review.decide": ("avatar.domain.review.decide",),
           "account.withdraw": ("avatar.domain.review.revoke",),
           "review.revoke_user": ("avatar.domain.review.revoke",),
           "account.delete": ("avatar.domain.account_data.delete_account",),
           "enroll.new_session": ("avatar.domain.enrollment.start",),
           "enroll.upload_recording": ("avatar.domain.enrollment.receive_recording",),
           "enroll.upload_paragraph": ("avatar.domain.enrollment.receive_reading", "avatar.web.enroll._check_later"),
           "enroll.upload_reading": ("avatar.domain.enrollment.receive_camera_reading",
                                     "avatar.web.enroll._check_later"),
           "enroll.consent": ("avatar.domain.enrollment.consent_and_submit", "avatar.domain.enrollment.give_consent",
                              "avatar.domain.enrollment.submit"),
           "admin.set_role": ("avatar.domain.accounts.set_role",),
           "admin.assisted": ("avatar.domain.enrollment.start_assisted",),
           "admin.protected": ("avatar.domain.protected.add_person",),
           "api.job_cancel": ("avatar.jobs.core.request_cancel",),
           "auth.change_password": ("avatar.domain.accounts.change_password",)}


def _source(dotted: str) -> str:
    module, name = dotted.rsplit(".", 1)
    return inspect.getsource(getattr(importlib.import_module(module), name))

COMMANDS = {
    "serve": "starts the app; what it serves audits itself",
    "worker": "starts a Celery worker; the jobs it runs audit themselves",
    "db upgrade": "changes the schema, before which the audit table may not exist",
    "db current": READS_ONLY,
    "admin create": ("admin.account_created",),
    "admin ensure": ("admin.account_created",),
    "admin analyse-voices": ("voice.analysis_added",),
    "keys rotate": ("keys.rotated", "keys.c2pa_signer_reissued"),
    "audit verify": READS_ONLY,
    "jobs status": READS_ONLY,
    "eval faces": READS_ONLY,
    "eval voices": READS_ONLY,
    "eval codes": READS_ONLY,
    "liveness passive": READS_ONLY,
    "liveness speech": READS_ONLY,
    "face check": READS_ONLY,
    "protect add": ("protected.added",),
    "protect list": READS_ONLY,
    "guard screen": READS_ONLY,
    "models pull": "writes model files under models/, nothing in the database",
    "models verify": READS_ONLY,
    "verify": READS_ONLY,
    "demo": "a throwaway instance of its own, driven through the routes above",
}

JOBS = {
    "audit.verify": READS_ONLY,
    "consent.expire": ("enrollment.expired",),
    "enrollment.verify": ("enrollment.capture_verified", "enrollment.capture_failed",
                          "enrollment.generated_media_refused"),
    "enrollment.reading": ("enrollment.reading_added", "enrollment.reading_refused",
                           "enrollment.generated_media_refused"),
    "enrollment.voice_extra": ("enrollment.voice_extra_added", "enrollment.voice_extra_refused",
                               "enrollment.generated_media_refused"),
    "generation.render": ("generation.completed",),
    "media.purge_expired": ("media.purged",),
    "media.sweep_orphans": ("media.orphans_swept",),
    "webhook.deliver": "changes only its delivery's row (attempts the account sees); what it sends was audited "
                       "with the action that caused it",
}


# jobs and commands whose events are appended by the domain action they call (with their Actor)
JOB_THROUGH = {"consent.expire": ("avatar.domain.review.revoke",)}
COMMAND_THROUGH = {"protect add": ("avatar.domain.protected.add_person",)}
COMMAND_HELPERS = {"keys rotate": ("avatar.cli.keys._rotate_master", "avatar.cli.keys._reissue_c2pa")}  # same module


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), cmd.callback


def _appends(source: str, actions) -> list[str]:
    """The actions of the table that the source does not name."""
    return [a for a in actions if f'"{a}"' not in source]


def test_every_state_changing_route_is_in_the_table(app):
    routes = {rule.endpoint for rule in app.url_map.iter_rules() if rule.methods & {"POST", "PUT", "PATCH", "DELETE"}}
    assert routes - set(ROUTES) == set(), "new state-changing routes: add them to ROUTES with their audit actions"
    assert set(ROUTES) - routes == set(), "ROUTES names routes that no longer exist"


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_each_route_appends_its_actions(app, endpoint):
    actions = ROUTES[endpoint]
    if isinstance(actions, str):
        return
    helpers = THROUGH.get(endpoint, ())
    web = inspect.getsource(app.view_functions[endpoint]) + "".join(
        _source(h) for h in helpers if h.startswith("avatar.web."))
    domain = "".join(_source(h) for h in helpers if not h.startswith("avatar.web."))
    if domain:  # the view passes its actor and commits once; the domain action appends the event
        assert "by=actor()" in web and "audit_event(" not in web, endpoint
        # one commit: the route's (commit(), or attempt() which commits) or the action's own
        assert "commit()" in web or "attempt(" in web or "session_scope()" in domain, endpoint
        assert "audit(session, by" in domain or "audit(s, by" in domain, endpoint
    else:
        assert "audit_event(" in web, endpoint
    source = web + domain
    assert not _appends(source.replace('f"review.{', '"review.{'), actions), endpoint


def test_every_command_is_in_the_table():
    names = {name for name, _ in _commands(cli_main)}
    assert names - set(COMMANDS) == set(), "new commands: add them to COMMANDS with their audit actions"
    assert set(COMMANDS) - names == set()


@pytest.mark.parametrize("name,callback", sorted(_commands(cli_main)), ids=lambda v: v if isinstance(v, str) else "")
def test_each_command_appends_its_actions_in_its_transaction(name, callback):
    actions = COMMANDS[name]
    source = inspect.getsource(callback)
    if isinstance(actions, str):
        assert "audit(" not in source, f"{name} appends an event: name it in COMMANDS"
        return
    if name in COMMAND_THROUGH:
        assert "by=Actor.cli()" in source
        source += "".join(_source(h) for h in COMMAND_THROUGH[name])
    source += "".join(_source(h) for h in COMMAND_HELPERS.get(name, ()))
    assert "audit(s" in source or "audit(session" in source  # into the action's own transaction
    assert "record(" not in source  # never in a second transaction after the action
    assert not _appends(source, actions), name


def _product_jobs() -> set[str]:
    """The jobs the app registers (test modules register jobs of their own in the same registry)."""
    return {name for name, fn in REGISTRY.items() if fn.__module__.startswith("avatar.")}


def test_every_job_is_in_the_table():
    assert _product_jobs() - set(JOBS) == set(), "new jobs: add them to JOBS with their audit actions"
    assert set(JOBS) - _product_jobs() == set()


@pytest.mark.parametrize("name", sorted(JOBS))
def test_each_job_appends_its_actions_in_its_transaction(name):
    actions = JOBS[name]
    source = inspect.getsource(REGISTRY[name])
    if isinstance(actions, str):
        assert "audit(" not in source
        return
    if name in JOB_THROUGH:
        assert "by=Actor.job(ctx.job_id" in source
        source += "".join(_source(h) for h in JOB_THROUGH[name])
    assert "record(" not in source
    assert not _appends(source, actions), name
