"""Queue webhook events inside the caller's transaction; the worker delivers them."""

import uuid
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ccphost.engine import configuration
from ccphost.engine.models import InstanceSettings
from ccphost.instances.models import Instance
from integrations.webhooks.models import TEST_EVENT, WebhookDelivery, WebhookEndpoint
from integrations.webhooks.worker import wake_worker


def enabled_endpoints(instance: Instance, settings: InstanceSettings | None = None) -> list[WebhookEndpoint]:
    """The instance's enabled endpoints; from the configuration cache when the engine's
    settings row (read under the engine lock) is given."""

    def load() -> list[WebhookEndpoint]:
        return list(WebhookEndpoint.objects.filter(instance=instance, enabled=True))

    return configuration.cached(settings, "webhook_endpoints", load) if settings is not None else load()


def enqueue_event(
    instance: Instance,
    event_type: str,
    payload: dict[str, Any],
    event_id: uuid.UUID | str | None = None,
    settings: InstanceSettings | None = None,
) -> list[WebhookDelivery]:
    """Create one pending delivery per enabled endpoint of ``instance`` that wants
    ``event_type``. Call it inside the transaction that records the event: the deliveries
    commit (or roll back) with it, and the worker is woken once it commits. Calling again
    with the same ``event_id`` creates nothing new."""
    endpoints = [e for e in enabled_endpoints(instance, settings) if e.wants(event_type)]
    if not endpoints:
        return []  # most events of most instances: nothing more to do on the engine's thread
    key = event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id)) if event_id else uuid.uuid4()
    now = timezone.now()
    deliveries = [queue_delivery(endpoint, event_type, payload, key, now) for endpoint in endpoints]
    transaction.on_commit(wake_worker, robust=True)
    return deliveries


def queue_delivery(
    endpoint: WebhookEndpoint, event_type: str, payload: dict[str, Any], key: uuid.UUID, now: Any
) -> WebhookDelivery:
    delivery, _ = WebhookDelivery.objects.get_or_create(
        endpoint=endpoint,
        event_id=key,
        defaults={"event_type": event_type, "payload": payload, "next_attempt_at": now},
    )
    return delivery


def queue_test_event(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``webhook.test`` delivery to this one endpoint, whatever its filter."""
    payload = {"message": "A test event from ccphost.", "endpoint": endpoint.pk}
    return queue_delivery(endpoint, TEST_EVENT, payload, uuid.uuid4(), timezone.now())


def retry_now(deliveries: QuerySet[WebhookDelivery]) -> int:
    """Make the deliveries due now; a failed one gets one more attempt."""
    count = int(
        deliveries.exclude(status=WebhookDelivery.Status.SUCCEEDED).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now()
        )
    )
    transaction.on_commit(wake_worker, robust=True)
    return count
