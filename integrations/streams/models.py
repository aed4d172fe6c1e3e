"""Kinesis streams that receive an instance's agent or contact event records."""

import re

from django.core.exceptions import ValidationError
from django.db import models

from ccphost.instances.models import Instance

STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")


def validate_stream_name(value: str) -> None:
    if not STREAM_NAME.match(value):
        raise ValidationError("A Kinesis stream name is 1-128 letters, digits, '_', '-' or '.'.")


class KinesisStream(models.Model):
    """One Kinesis data stream fed from the event log, with its own cursor: records are put
    in sequence order, at least once, and the cursor moves only past what Kinesis took."""

    class Records(models.TextChoices):
        AGENT = "agent", "Agent events (Amazon Connect agent event stream format)"
        CONTACT = "contact", "Contact events (Amazon Connect contact events format)"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="kinesis_streams")
    records = models.CharField(max_length=10, choices=Records.choices)
    stream_name = models.CharField(max_length=128, validators=[validate_stream_name])
    region = models.CharField(max_length=30, help_text="AWS region of the stream, like us-east-1.")
    enabled = models.BooleanField(default=True)
    last_sequence = models.BigIntegerField(default=0, help_text="The last event put to the stream.")
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "records", "stream_name"], name="unique_kinesis_stream")
        ]

    def __str__(self) -> str:
        return f"{self.instance.alias} {self.records} events → {self.stream_name}"
