"""Engine events become webhook deliveries in the event's own transaction."""

import pytest

from ccphost.engine import network, seed
from ccphost.engine.core import EngineError
from ccphost.engine.models import EngineEvent, Queue
from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint


@pytest.fixture
def center(instance):
    seed.seed_instance_defaults(instance)
    return instance


def call(instance, number="+15555550123"):
    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    return network.start_inbound_contact(instance, queue, number, {})


def test_each_event_is_one_delivery_per_interested_endpoint(center):
    everything = WebhookEndpoint.objects.create(instance=center, url="https://hooks.example.com/all")
    contacts = WebhookEndpoint.objects.create(
        instance=center, url="https://hooks.example.com/queued", event_filter=["contact.QUEUED"]
    )
    call(center)
    events = EngineEvent.objects.filter(instance=center)
    assert WebhookDelivery.objects.filter(endpoint=everything).count() == events.count()
    queued = WebhookDelivery.objects.get(endpoint=contacts)
    assert queued.event_type == "contact.QUEUED"
    assert str(queued.event_id) == str(events.get(event_type="QUEUED").event_id), "idempotency key = event id"


def test_no_delivery_when_the_change_is_refused(center):
    WebhookEndpoint.objects.create(instance=center, url="https://hooks.example.com/all")
    with pytest.raises(EngineError):
        call(center, number="not a number")
    assert not WebhookDelivery.objects.exists()
