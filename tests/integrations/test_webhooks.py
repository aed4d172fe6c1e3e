"""Webhooks posted to a real local HTTP server: signed, retried with backoff until a limit,
idempotent, filtered, persisted with the caller's transaction, delivered after a restart."""

import json
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from integrations.webhooks.delivery import deliver_due, retry_delay
from integrations.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services import enqueue_event
from integrations.webhooks.signing import verify_signature
from integrations.webhooks.worker import start_webhook_worker, stop_webhook_worker


class Receiver(ThreadingHTTPServer):
    """Answers each POST with the next planned (status, delay), then 200; records requests."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.plan: list[tuple[int, float]] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks"


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((dict(self.headers), body))
        status, delay = self.server.plan.pop(0) if self.server.plan else (200, 0.0)
        time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver(settings, monkeypatch):
    settings.CCPHOST_ALLOW_HTTP_LOOPBACK = True
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint(instance, receiver):
    return WebhookEndpoint.objects.create(instance=instance, url=receiver.url, timeout=0.5, max_attempts=3)


def later(minutes: int = 30):
    return timezone.now() + timedelta(minutes=minutes)


def enqueue(instance, event_type="agent.state_changed", payload=None):
    with transaction.atomic():
        return enqueue_event(instance, event_type, payload or {"agent": "ada", "state": "Available"})


def test_delivery_is_signed_and_verifies(instance, endpoint, receiver):
    [delivery] = enqueue(instance)

    assert deliver_due() == 1

    headers, body = receiver.requests[0]
    assert verify_signature(endpoint.secret, headers["X-Ccphost-Timestamp"], body, headers["X-Ccphost-Signature"])
    assert not verify_signature("wrong-secret", headers["X-Ccphost-Timestamp"], body, headers["X-Ccphost-Signature"])
    assert not verify_signature(
        endpoint.secret, headers["X-Ccphost-Timestamp"], body + b" ", headers["X-Ccphost-Signature"]
    )
    assert headers["X-Ccphost-Event"] == "agent.state_changed"
    assert headers["X-Ccphost-Delivery"] == str(delivery.event_id)
    assert json.loads(body)["data"] == {"agent": "ada", "state": "Available"}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.delivered_at is not None


def test_old_timestamps_are_refused_by_verify_signature(endpoint):
    from integrations.webhooks.signing import sign

    old = int(time.time()) - 600
    assert not verify_signature(endpoint.secret, old, b"{}", sign(endpoint.secret, old, b"{}"))
    assert verify_signature(endpoint.secret, old, b"{}", sign(endpoint.secret, old, b"{}"), tolerance=900)


def test_retries_on_500_and_timeout_with_a_stable_idempotency_key(instance, endpoint, receiver):
    receiver.plan = [(500, 0.0), (200, 1.0)]  # an error, then an answer slower than the timeout
    [delivery] = enqueue(instance)

    deliver_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("pending", 500)
    assert delivery.next_attempt_at > timezone.now() - timedelta(seconds=1)

    deliver_due(now=later())
    delivery.refresh_from_db()
    assert delivery.status == "pending" and "timeout" in delivery.last_error

    deliver_due(now=later(60))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    assert {h["X-Ccphost-Delivery"] for h, _ in receiver.requests} == {str(delivery.event_id)}
    assert [(a.number, a.status_code) for a in WebhookAttempt.objects.filter(delivery=delivery)] == [
        (1, 500),
        (2, None),
        (3, 200),
    ]


def test_gives_up_after_max_attempts(instance, endpoint, receiver):
    receiver.plan = [(503, 0.0)] * 5
    [delivery] = enqueue(instance)

    for minutes in (0, 30, 60, 90):
        deliver_due(now=later(minutes))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 3, 503)
    assert len(receiver.requests) == 3


def test_backoff_is_exponential_with_full_jitter_and_capped():
    for attempts, ceiling in ((1, 2), (2, 4), (5, 32), (20, 600)):
        delays = [retry_delay(attempts).total_seconds() for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert max(delays) > ceiling / 2


def test_pending_delivery_survives_a_restart(instance, endpoint, receiver):
    # Queued, then the process died before the worker ran: the row is all that is left.
    [delivery] = enqueue(instance)

    call_command("deliver_webhooks", "--once")

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert len(receiver.requests) == 1


def test_an_abandoned_claim_is_retried_after_its_lease(instance, endpoint, receiver):
    [delivery] = enqueue(instance)
    from integrations.webhooks.delivery import claim_next

    assert claim_next(timezone.now()) is not None  # then the process died mid-POST
    assert deliver_due() == 0

    assert deliver_due(now=later(5)) == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


def test_event_filter_is_respected(instance, receiver):
    states = WebhookEndpoint.objects.create(instance=instance, url=receiver.url, event_filter=["agent.state_changed"])
    everything = WebhookEndpoint.objects.create(instance=instance, url=receiver.url + "/all")
    WebhookEndpoint.objects.create(instance=instance, url=receiver.url + "/off", enabled=False)

    enqueue(instance, "agent.state_changed")
    enqueue(instance, "contact.connected")

    assert sorted(WebhookDelivery.objects.filter(endpoint=states).values_list("event_type", flat=True)) == [
        "agent.state_changed"
    ]
    assert WebhookDelivery.objects.filter(endpoint=everything).count() == 2
    assert WebhookDelivery.objects.count() == 3


def test_no_delivery_when_the_callers_transaction_rolls_back(instance, endpoint):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_event(instance, "agent.state_changed", {})
        raise RuntimeError("the event itself failed")

    assert not WebhookDelivery.objects.exists()


def test_same_event_id_is_queued_once(instance, endpoint):
    event_id = uuid.uuid4()
    with transaction.atomic():
        enqueue_event(instance, "agent.state_changed", {}, event_id=event_id)
        enqueue_event(instance, "agent.state_changed", {}, event_id=event_id)

    assert WebhookDelivery.objects.get().event_id == event_id


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://crm.example.com/hooks", "must use https"),
        ("ftp://crm.example.com/hooks", "must use https, not ftp"),
        ("https://user:pw@crm.example.com/hooks", "cannot contain user info"),
        ("https://169.254.169.254/latest", "link-local"),
    ],
)
def test_invalid_endpoint_urls_are_refused_with_clear_messages(instance, url, message):
    with pytest.raises(ValidationError) as error:
        WebhookEndpoint(instance=instance, url=url).full_clean()

    assert message in " ".join(error.value.message_dict["url"])


def test_http_loopback_needs_the_setting(instance, settings):
    settings.CCPHOST_ALLOW_HTTP_LOOPBACK = False
    with pytest.raises(ValidationError, match="CCPHOST_ALLOW_HTTP_LOOPBACK"):
        WebhookEndpoint(instance=instance, url="http://127.0.0.1:9/hooks").full_clean()


def test_event_filter_names_are_validated(instance, settings):
    with pytest.raises(ValidationError, match="Not event type names"):
        WebhookEndpoint(instance=instance, url="https://crm.example.com/h", event_filter=["bad name!"]).full_clean()
    settings.CCPHOST_WEBHOOK_EVENT_TYPES = ["agent.state_changed"]
    with pytest.raises(ValidationError, match=r"Unknown event types: contact\.ended"):
        WebhookEndpoint(instance=instance, url="https://crm.example.com/h", event_filter=["contact.ended"]).full_clean()


@pytest.mark.django_db(transaction=True)
def test_worker_thread_delivers_soon_after_commit(instance, endpoint, receiver):
    try:
        assert start_webhook_worker() is start_webhook_worker()
        enqueue(instance)
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop_webhook_worker()
    assert len(receiver.requests) == 1


def test_admin_shows_secret_sends_a_test_event_and_retries(client, admin_user, endpoint, receiver):
    client.force_login(admin_user)
    page = client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint.secret in page.content.decode()

    changelist = "/admin/webhooks/webhookendpoint/"
    client.post(changelist, {"action": "send_test_event", "_selected_action": [endpoint.pk]})
    delivery = WebhookDelivery.objects.get(event_type="webhook.test")
    assert delivery.status == "succeeded"
    assert receiver.requests[0][0]["X-Ccphost-Event"] == "webhook.test"

    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    log = "/admin/webhooks/webhookdelivery/"
    assert client.get(log).status_code == 200
    assert client.get(f"{log}{delivery.pk}/change/").status_code == 200
    client.post(log, {"action": "retry_deliveries_now", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at <= timezone.now()


def test_admin_adds_an_endpoint_with_a_comma_separated_filter(client, admin_user, instance, settings):
    client.force_login(admin_user)
    add = "/admin/webhooks/webhookendpoint/add/"
    form = {"instance": instance.pk, "url": "https://crm.example.com/h", "secret": "s3cret", "enabled": "on"}
    form |= {"event_filter": "agent.state_changed, contact.ended", "max_attempts": 8, "timeout": 5}
    assert client.get(add).status_code == 200

    assert client.post(add, form).status_code == 302
    assert WebhookEndpoint.objects.get().event_filter == ["agent.state_changed", "contact.ended"]
    refused = client.post(add, form | {"url": "http://crm.example.com/h"})
    assert "must use https" in refused.content.decode()
