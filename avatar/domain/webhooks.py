"""Signed webhooks: the rules. An account registers callback URLs for the events it wants; each
event that concerns it becomes a delivery per endpoint, written in the same transaction as the
action that caused it (an outbox: a rolled-back action sends nothing, a committed one is never
lost), delivered by the `webhook.deliver` job (avatar/jobs/webhooks.py).

Deliveries follow the Standard Webhooks convention: headers `webhook-id` (the same on every retry),
`webhook-timestamp` (Unix seconds) and `webhook-signature` ("v1," + base64 HMAC-SHA256 over
"{id}.{timestamp}.{body}" keyed with the endpoint's secret, the bytes after "whsec_"; after a
rotation, for a day, a second signature with the previous secret, space-separated). The body is
{"type", "timestamp", "data"}, and data holds ids and states only: never media, scripts, names,
emails or anything biometric.

A secret is shown once and never stored: it is derived from the instance's webhook key, the
endpoint's id and its secret version, so a copy of the database cannot sign. URLs must be https and
resolve only to public addresses (checked here when registered and again at every delivery, since
DNS can change), unless the operator allows private ones (AVATAR_WEBHOOK_ALLOW_PRIVATE)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
from datetime import datetime, timedelta
from typing import Callable, Iterable
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.domain import DomainError, NotFound
from avatar.domain.actor import Actor, audit
from avatar.store.db import utcnow
from avatar.store.models import Delegation, Job, JobState, User, WebhookDelivery, WebhookEndpoint

EVENTS = {
    "generation.ready": "a generation is ready to download",
    "generation.failed": "a generation failed",
    "generation.revoked": "a generation was revoked (consent withdrawn or expired) and deleted",
    "enrollment.decided": "a reviewer approved or rejected your enrollment",
    "consent.withdrawn": "the person withdrew consent to their likeness",
    "consent.expired": "the person's consent ran out",
}
MAX_ENDPOINTS = 10
MAX_URL = 2048
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
PREVIOUS_SECRET_HOURS = 24  # after a rotation, deliveries carry both signatures this long
DELIVERY_JOB = "webhook.deliver"
DELIVERY_JOB_MAX_ATTEMPTS = 40  # the job's claims; the retry schedule ends a delivery long before
PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
KEEP_DELIVERIES = timedelta(days=30)  # finished deliveries (with their attempts) are listed this long

Resolver = Callable[[str, int], list[str]]  # host, port -> the addresses it resolves to


class UnsafeDestination(DomainError):
    """The URL is not one deliveries may go to; the message says why."""

    status = 422


# -- secrets and signatures ------------------------------------------------------------------

def secret_for(webhook_key: bytes, endpoint_id: int, version: int) -> str:
    """The endpoint's signing secret (whsec_ + base64 of 32 bytes)."""
    raw = hmac.new(webhook_key, f"avatar-webhook-secret:{endpoint_id}:{version}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: "v1," + base64 HMAC-SHA256 over id.timestamp.body."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(webhook_key: bytes, endpoint: WebhookEndpoint, message_id: str, timestamp: int, body: bytes,
                     now: datetime | None = None) -> str:
    """The webhook-signature value: the current secret's signature, and the previous secret's
    while a rotation is under a day old."""
    sigs = [sign(secret_for(webhook_key, endpoint.id, endpoint.secret_version), message_id, timestamp, body)]
    if endpoint.previous_secret_until is not None and (now or utcnow()) < endpoint.previous_secret_until:
        sigs.append(sign(secret_for(webhook_key, endpoint.id, endpoint.secret_version - 1), message_id, timestamp, body))
    return " ".join(sigs)


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


# -- where deliveries may go -------------------------------------------------------------------

def parse_url(url: str, allow_private: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable callback URL, or UnsafeDestination."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeDestination("Give the callback URL.")
    url = url.strip()
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise UnsafeDestination(f"The URL must be one line of at most {MAX_URL} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"The URL cannot be read: {exc}.") from exc
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeDestination("The URL must start with https://." if not allow_private
                                else "The URL must start with https:// or http://.")
    if not parts.hostname:
        raise UnsafeDestination("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("Put no user name or password in the URL; verify the signature instead.")
    if parts.fragment:
        raise UnsafeDestination("The URL must not have a #fragment.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def refusal(addresses: Iterable[str], allow_private: bool) -> str | None:
    """Why deliveries may not go to these addresses (None: they may). Only public unicast
    addresses pass, unless the operator allows private ones; an IPv4 address inside IPv6 is
    judged as the IPv4 address it is."""
    addresses = list(addresses)
    if not addresses:
        return "the host does not resolve to any address"
    if allow_private:
        return None
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return f"the host resolves to something that is not an address ({text[:60]})"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            kind = ("loopback" if ip.is_loopback else "link-local" if ip.is_link_local else
                    "multicast" if ip.is_multicast else "private or reserved")
            return f"the host resolves to a {kind} address ({ip}); deliveries go to public addresses only"
    return None


def check_destination(url: str, allow_private: bool, resolve: Resolver) -> None:
    """UnsafeDestination unless the URL is acceptable and its host resolves to allowed addresses."""
    _, host, port = parse_url(url, allow_private)
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise UnsafeDestination(f"The host {host} cannot be resolved ({exc}).") from exc
    why = refusal(addresses, allow_private)
    if why:
        raise UnsafeDestination(f"Deliveries cannot go to {host}: {why}.")


# -- endpoints -------------------------------------------------------------------------------

def _events(events) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise DomainError(f"Choose the events to receive: {', '.join(EVENTS)}.")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise DomainError(f"Unknown event(s) {', '.join(unknown)[:200]}; the events are {', '.join(EVENTS)}.")
    return sorted(set(events))


def live_endpoints(session: Session, user_id: int) -> list[WebhookEndpoint]:
    return session.scalars(sa.select(WebhookEndpoint).where(
        WebhookEndpoint.user_id == user_id, WebhookEndpoint.deleted_at.is_(None)).order_by(WebhookEndpoint.id)).all()


def create_endpoint(session: Session, user: User, url: str, events, description: str, *, by: Actor,
                    allow_private: bool, resolve: Resolver) -> WebhookEndpoint:
    """A new endpoint of the user's (audited in the same transaction); its secret is
    secret_for(key, endpoint.id, 1), shown to the user once."""
    events = _events(events)
    check_destination(url, allow_private, resolve)
    description = " ".join((description or "").split())[:200] if isinstance(description, str) else ""
    if len(live_endpoints(session, user.id)) >= MAX_ENDPOINTS:
        raise DomainError(f"You have {MAX_ENDPOINTS} webhook endpoints; delete one first.")
    row = WebhookEndpoint(user_id=user.id, url=url.strip(), events=events, description=description,
                          token_id=by.token_id, secret_version=1)
    session.add(row)
    session.flush()
    audit(session, by, "webhook.created", target_type="webhook_endpoint", target_id=row.id,
          details={"url": row.url, "events": events})
    return row


def owned_endpoint(session: Session, user: User, endpoint_id: int) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id) if 0 < endpoint_id < 2 ** 63 else None
    if row is None or row.user_id != user.id or row.deleted_at is not None:
        raise NotFound("No such webhook endpoint.")
    return row


def rotate_secret(session: Session, user: User, endpoint_id: int, *, by: Actor) -> WebhookEndpoint:
    """A new secret (secret_for with the new version), the previous one still signing beside it
    for PREVIOUS_SECRET_HOURS so a receiver can switch without losing a delivery."""
    row = owned_endpoint(session, user, endpoint_id)
    row.secret_version += 1
    row.previous_secret_until = utcnow() + timedelta(hours=PREVIOUS_SECRET_HOURS)
    audit(session, by, "webhook.secret_rotated", target_type="webhook_endpoint", target_id=row.id,
          details={"version": row.secret_version})
    return row


def delete_endpoint(session: Session, user: User, endpoint_id: int, *, by: Actor) -> WebhookEndpoint:
    """The endpoint stops receiving at once: its pending deliveries are cancelled."""
    row = owned_endpoint(session, user, endpoint_id)
    row.deleted_at = utcnow()
    _cancel(session, WebhookDelivery.endpoint_id == row.id)
    audit(session, by, "webhook.deleted", target_type="webhook_endpoint", target_id=row.id, details={"url": row.url})
    return row


def delete_all(session: Session, user_id: int) -> int:
    """Every endpoint of an account stops at once (the account is being deleted)."""
    rows = live_endpoints(session, user_id)
    now = utcnow()
    for row in rows:
        row.deleted_at = now
    if rows:
        _cancel(session, WebhookDelivery.endpoint_id.in_([r.id for r in rows]))
    return len(rows)


def purge_finished(session: Session) -> int:
    """Deletes finished deliveries older than KEEP_DELIVERIES. Returns how many."""
    return session.execute(sa.delete(WebhookDelivery).where(
        WebhookDelivery.state != PENDING, WebhookDelivery.created_at < utcnow() - KEEP_DELIVERIES)).rowcount


def deliveries(session: Session, endpoint: WebhookEndpoint, limit: int = 20) -> list[WebhookDelivery]:
    return session.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
                           .order_by(WebhookDelivery.id.desc()).limit(limit)).all()


def public_endpoint(row: WebhookEndpoint) -> dict:
    return {"id": row.id, "url": row.url, "events": row.events, "description": row.description,
            "secret_version": row.secret_version, "created_at": row.created_at.isoformat() + "Z",
            "previous_secret_until": row.previous_secret_until.isoformat() + "Z" if row.previous_secret_until else None}


def public_delivery(row: WebhookDelivery) -> dict:
    return {"id": row.id, "message_id": row.message_id, "type": row.event_type, "state": row.state,
            "created_at": row.created_at.isoformat() + "Z",
            "finished_at": row.finished_at.isoformat() + "Z" if row.finished_at else None,
            "attempts": row.attempts, "payload": row.payload}


# -- events ----------------------------------------------------------------------------------

def emit(session: Session, event_type: str, data: dict, recipients: Iterable[int | None], *,
         subject_id: int | None = None) -> list[WebhookDelivery]:
    """A delivery (and its job) for every live endpoint of the recipients that wants this event,
    in the caller's transaction. subject_id: whose likeness the event concerns, so that
    withdrawing consent cancels it while still undelivered (revocation events pass None)."""
    if event_type not in EVENTS:
        raise ValueError(f"unknown webhook event {event_type!r}")
    users = sorted({u for u in recipients if u is not None})
    if not users:
        return []
    endpoints = session.scalars(sa.select(WebhookEndpoint).where(
        WebhookEndpoint.user_id.in_(users), WebhookEndpoint.deleted_at.is_(None))).all()
    now = utcnow()
    out = []
    for endpoint in endpoints:
        if event_type not in (endpoint.events or []):
            continue
        delivery = WebhookDelivery(
            endpoint_id=endpoint.id, message_id="msg_" + secrets.token_urlsafe(18), event_type=event_type,
            payload={"type": event_type, "timestamp": now.isoformat() + "Z", "data": data},
            subject_id=subject_id, state=PENDING, attempts=[])
        session.add(delivery)
        session.flush()
        job = Job(name=DELIVERY_JOB, payload={"delivery_id": delivery.id}, owner_id=endpoint.user_id,
                  subject_id=subject_id, max_attempts=DELIVERY_JOB_MAX_ATTEMPTS, message="queued")
        session.add(job)
        session.flush()
        delivery.job_id = job.id
        out.append(delivery)
    return out


def cancel_for_subject(session: Session, subject_id: int) -> int:
    """Undelivered events about a subject's likeness go nowhere once their consent is withdrawn."""
    return _cancel(session, WebhookDelivery.subject_id == subject_id)


def _cancel(session: Session, where) -> int:
    rows = session.scalars(sa.select(WebhookDelivery).where(where, WebhookDelivery.state == PENDING)).all()
    now = utcnow()
    for row in rows:
        row.state, row.finished_at = CANCELLED, now
    jobs = [r.job_id for r in rows if r.job_id]
    if jobs:
        session.execute(sa.update(Job).where(Job.id.in_(jobs), Job.state == JobState.QUEUED.value).values(
            state=JobState.CANCELLED.value, cancel_requested=True, finished_at=now, message="cancelled"))
    return len(rows)


def delegates_of(session: Session, subject_id: int) -> list[int]:
    """Accounts that hold (or held) a delegation of the subject's likeness."""
    return list(session.scalars(sa.select(Delegation.delegate_id).where(Delegation.subject_id == subject_id)).all())
