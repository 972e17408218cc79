"""The `webhook.deliver` job: one attempt to POST a delivery to its endpoint, signed (Standard
Webhooks, domain/webhooks.py), then delivered, another attempt after the next wait of
AVATAR_WEBHOOK_RETRY_SECONDS, or failed when the waits are spent (about a day by default).

Every attempt resolves the host again and refuses loopback, private and link-local addresses
(unless AVATAR_WEBHOOK_ALLOW_PRIVATE), then connects to exactly the address it checked, so a DNS
answer that changes between the check and the connection (rebinding) reaches nothing it should
not. Redirects are not followed. Resolving, connecting and each read may take
AVATAR_WEBHOOK_TIMEOUT_SECONDS, the whole exchange twice that, and no more than ANSWER_BYTES of the
answer are read."""
from __future__ import annotations

import concurrent.futures
import http.client
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from avatar.domain import webhooks as rules
from avatar.jobs.core import SUBMIT_ON_COMMIT, JobContext, PermanentJobError, RetryLater, job
from avatar.store.db import utcnow
from avatar.store.models import WebhookDelivery, WebhookEndpoint

ANSWER_BYTES = 4096
TOTAL_TIMEOUTS = 2  # the whole exchange may take this many AVATAR_WEBHOOK_TIMEOUT_SECONDS
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="avatar-dns")

SUBMIT_ON_COMMIT.add(rules.DELIVERY_JOB)


class DeliveryError(Exception):
    """The attempt did not get an HTTP answer; the message says why (shown to the account)."""


def resolve(host: str, port: int, timeout: float = 3.0) -> list[str]:
    """The addresses host resolves to (OSError when it does not, or not within timeout)."""
    future = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        raise OSError(f"no answer from DNS within {timeout:g} s") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


class _Pinned(http.client.HTTPConnection):
    """Plain HTTP to one checked address (the Host header still names the host)."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address, self.cut = address, False

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    """HTTPS to one checked address; the certificate is verified for the host name (SNI too)."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address, self.cut = address, False

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict, *, allow_private: bool, timeout: float) -> int:
    """POSTs body to url (after the destination checks above); returns the HTTP status."""
    try:
        scheme, host, port = rules.parse_url(url, allow_private)
    except rules.UnsafeDestination as exc:
        raise DeliveryError(str(exc)) from exc
    try:
        addresses = resolve(host, port, timeout)
    except OSError as exc:
        raise DeliveryError(f"{host} cannot be resolved ({exc})") from exc
    why = rules.refusal(addresses, allow_private)
    if why:
        raise DeliveryError(f"refused: {why}")
    parts = urlsplit(url.strip())
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = (_PinnedTLS if scheme == "https" else _Pinned)(host, port, addresses[0], timeout)
    # each step waits at most `timeout`; a receiver that trickles its answer a byte at a time is
    # cut off when the whole exchange has taken TOTAL_TIMEOUTS times that
    watchdog = threading.Timer(TOTAL_TIMEOUTS * timeout, _cut, args=(conn,))
    watchdog.daemon = True
    watchdog.start()
    too_long = DeliveryError(f"no complete answer within {TOTAL_TIMEOUTS * timeout:g} s")
    try:
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read(ANSWER_BYTES)  # a few KB at most, whatever the receiver sends
    except (OSError, http.client.HTTPException, AttributeError) as exc:  # AttributeError: cut mid-read
        raise (too_long if conn.cut else DeliveryError(f"{type(exc).__name__}: {exc}"[:300])) from exc
    finally:
        watchdog.cancel()
        conn.close()
    if conn.cut:  # what was read before the cut may look like a whole answer: it is not one
        raise too_long
    return answer.status


def _cut(conn) -> None:
    """Ends an exchange that has taken too long (a blocked read returns at once)."""
    conn.cut = True
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@job(rules.DELIVERY_JOB)
def deliver(ctx: JobContext) -> dict:
    svc = ctx.services
    cfg = svc.config
    delivery_id = ctx.payload.get("delivery_id")
    if not isinstance(delivery_id, int):
        return {"state": "gone"}  # an account deleted since: its jobs' payloads are emptied
    with svc.db.session_scope() as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.state != rules.PENDING:
            return {"state": delivery.state if delivery is not None else "gone"}
        endpoint = s.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or endpoint.deleted_at is not None:
            delivery.state, delivery.finished_at = rules.CANCELLED, utcnow()
            return {"state": rules.CANCELLED}
        body = rules.body_of(delivery)
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": f"{cfg.SERVICE_NAME}-Webhooks/1",
                   "webhook-id": delivery.message_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": rules.signature_header(svc.webhook_key, endpoint, delivery.message_id,
                                                               timestamp, body)}
        url = endpoint.url
    started = time.monotonic()
    status, error = None, None
    try:
        status = post(url, body, headers, allow_private=cfg.WEBHOOK_ALLOW_PRIVATE, timeout=cfg.WEBHOOK_TIMEOUT_SECONDS)
        if not 200 <= status < 300:
            error = f"answered {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    except DeliveryError as exc:
        error = str(exc)
    attempt = {"at": utcnow().isoformat() + "Z", "status": status, "error": error,
               "ms": round(1000 * (time.monotonic() - started))}
    waits = cfg.webhook_retry_seconds()
    with svc.db.session_scope() as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return {"state": "gone"}
        delivery.attempts = [*delivery.attempts, attempt]  # a new list: JSON columns track assignment
        n = len(delivery.attempts)
        if delivery.state != rules.PENDING:  # cancelled while this attempt was under way
            return {"state": delivery.state, "attempts": n}
        if error is None:
            delivery.state, delivery.finished_at = rules.DELIVERED, utcnow()
            return {"state": rules.DELIVERED, "attempts": n}
        if n > len(waits):
            delivery.state, delivery.finished_at = rules.FAILED, utcnow()
    if n > len(waits):
        raise PermanentJobError(f"not delivered after {n} attempts; the last: {error}")
    raise RetryLater(waits[n - 1], f"attempt {n} failed ({error}); the next in {waits[n - 1]:g} s")
