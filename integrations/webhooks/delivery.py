"""Deliver due webhooks: claim one, POST it signed, record the attempt, schedule a retry.

Runs outside the request path (``start_webhook_worker`` or ``manage.py deliver_webhooks``).
A delivery is claimed by pushing its ``next_attempt_at`` past the attempt (a lease) in a
short transaction, with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
processes never POST the same attempt, and no transaction is open during the POST. If a
process dies mid-attempt, the lease runs out and the delivery is tried again.
"""

import json
import logging
import random
import time
from collections.abc import Collection
from datetime import datetime, timedelta

import requests
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from integrations.webhooks.http import webhook_session
from integrations.webhooks.models import WebhookAttempt, WebhookDelivery
from integrations.webhooks.signing import sign

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 600.0
LEASE_MARGIN = timedelta(seconds=60)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempts-1))]."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=random.uniform(0, ceiling))


def request_body(delivery: WebhookDelivery) -> bytes:
    envelope = {
        "id": str(delivery.event_id),
        "type": delivery.event_type,
        "instance": delivery.endpoint.instance.alias,
        "created_at": delivery.created_at,
        "data": delivery.payload,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True).encode()


def request_headers(delivery: WebhookDelivery, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "X-Ccphost-Event": delivery.event_type,
        "X-Ccphost-Delivery": str(delivery.event_id),
        "X-Ccphost-Timestamp": str(timestamp),
        "X-Ccphost-Signature": sign(delivery.endpoint.secret, timestamp, body),
    }


def post_delivery(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One POST; returns (status code or None, error text or '' on a 2xx)."""
    endpoint = delivery.endpoint
    body = request_body(delivery)
    try:
        code, excerpt = webhook_session().post(
            endpoint.url, body=body, headers=request_headers(delivery, body), timeout=endpoint.timeout
        )
    except requests.Timeout:
        return None, f"No answer within {endpoint.timeout:g} s (timeout)."
    except requests.RequestException as exc:
        return None, f"Connection failed: {exc}"[:2000]
    if 200 <= code < 300:
        return code, ""
    return code, f"HTTP {code}: {excerpt}".strip()[:2000]


def record_attempt(delivery: WebhookDelivery, code: int | None, error: str, started: float, now: datetime) -> None:
    delivery.attempts += 1
    delivery.last_status_code = code
    delivery.last_error = error
    if not error:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = WebhookDelivery.Status.SUCCEEDED, now, None
    elif delivery.attempts >= delivery.endpoint.max_attempts:
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
    else:
        delivery.next_attempt_at = now + retry_delay(delivery.attempts)
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            status_code=code,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        delivery.save(
            update_fields=["attempts", "status", "last_status_code", "last_error", "next_attempt_at", "delivered_at"]
        )


def attempt_delivery(delivery: WebhookDelivery, now: datetime | None = None) -> bool:
    """POST the delivery once and record the outcome; True if the endpoint took it."""
    started = time.monotonic()
    code, error = post_delivery(delivery)
    record_attempt(delivery, code, error, started, now or timezone.now())
    if error:
        logger.info("Webhook %s to %s failed: %s", delivery.event_id, delivery.endpoint.url, error)
    return not error


def claim_next(now: datetime, skip: Collection[int] = ()) -> WebhookDelivery | None:
    """Take the next due delivery for this process, leasing it for one attempt."""
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        due = due.exclude(pk__in=skip)
        due = due.order_by("next_attempt_at", "pk").select_related("endpoint__instance")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        delivery = due.first()
        if delivery is None:
            return None
        lease = timedelta(seconds=delivery.endpoint.timeout) + LEASE_MARGIN
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + lease)
    return delivery


def deliver_due(now: datetime | None = None, limit: int = 100) -> int:
    """Attempt up to ``limit`` due deliveries; returns how many were attempted."""
    now = now or timezone.now()
    attempted: list[int] = []  # at most one attempt per delivery and pass
    while len(attempted) < limit:
        delivery = claim_next(now, attempted)
        if delivery is None:
            break
        attempt_delivery(delivery, now)
        attempted.append(delivery.pk)
    return len(attempted)
