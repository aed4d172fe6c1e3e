"""Webhook endpoints of an instance, and one delivery per event and endpoint with its attempts."""

import ipaddress
import re
import secrets
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from ccphost.instances.models import Instance

EVENT_TYPE = re.compile(r"^[A-Za-z_:.]{1,100}$")
TEST_EVENT = "webhook.test"


def generate_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def known_event_types() -> frozenset[str]:
    """The event types endpoints may filter on; empty (the default) means any well-formed name."""
    return frozenset(getattr(settings, "CCPHOST_WEBHOOK_EVENT_TYPES", ()))


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_webhook_url(value: str) -> None:
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
    except ValueError:
        raise ValidationError(f"{value!r} is not a valid URL.") from None
    if parts.scheme == "http":
        if not is_loopback(host):
            raise ValidationError("A webhook URL must use https (plain http only for loopback hosts in development).")
        if not settings.CCPHOST_ALLOW_HTTP_LOOPBACK:
            raise ValidationError(
                "Plain http is allowed only for loopback hosts when CCPHOST_ALLOW_HTTP_LOOPBACK is on."
            )
    elif parts.scheme != "https":
        raise ValidationError(f"A webhook URL must use https, not {parts.scheme or 'no scheme'}.")
    if not host:
        raise ValidationError("A webhook URL needs a host, like https://crm.example.com/hooks/ccphost.")
    if parts.username or parts.password:
        raise ValidationError("A webhook URL cannot contain user info (user:password@); the signature authenticates.")
    if parts.fragment:
        raise ValidationError("A webhook URL cannot have a fragment (#...).")
    if host.startswith("169.254.") or host.lower().startswith("fe80:"):
        raise ValidationError("A webhook URL cannot point at a link-local address.")


def validate_event_filter(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError("The event filter is a list of event type names (empty for all events).")
    bad = [name for name in value if not EVENT_TYPE.match(name)]
    if bad:
        raise ValidationError(f"Not event type names: {', '.join(map(repr, bad))} (letters, '_', ':' and '.').")
    known = known_event_types()
    unknown = [name for name in value if known and name not in known]
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")


class WebhookEndpoint(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField("URL", max_length=2000, validators=[validate_webhook_url])
    secret = models.CharField(
        max_length=100, default=generate_secret, help_text="Signs every request (X-Ccphost-Signature)."
    )
    event_filter = models.JSONField(
        default=list, blank=True, validators=[validate_event_filter], help_text="Event types to send; empty for all."
    )
    enabled = models.BooleanField(default=True)
    max_attempts = models.PositiveSmallIntegerField(default=8, validators=[MinValueValidator(1), MaxValueValidator(20)])
    timeout = models.FloatField(
        "timeout (seconds)", default=5.0, validators=[MinValueValidator(0.1), MaxValueValidator(30)]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instance", "url"]

    def __str__(self) -> str:
        return f"{self.instance.alias} → {self.url}"

    def wants(self, event_type: str) -> bool:
        return not self.event_filter or event_type in self.event_filter


class WebhookDelivery(models.Model):
    """One event for one endpoint. ``event_id`` is the idempotency key sent as
    X-Ccphost-Delivery: the same on every attempt."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["endpoint", "event_id"], name="unique_delivery_per_event")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.endpoint.url} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what the endpoint answered, or why there was no answer."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"
