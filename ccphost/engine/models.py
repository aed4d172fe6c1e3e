"""The contact center of one instance: agents, their states, queues, routing profiles,
quick connects, contacts and their connections, persisted timers and the event log.

Ids are UUIDs and ARNs follow Amazon Connect's formats under `Instance.arn_prefix`."""

import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import models

from ccphost.instances.models import Instance


def new_simulator_token() -> str:
    return secrets.token_urlsafe(32)


class InstanceSettings(models.Model):
    """Engine settings of an instance, and its event counter (``last_event_sequence``),
    whose row lock numbers events in commit order (engine.core)."""

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, related_name="engine_settings")
    ring_timeout_seconds = models.PositiveIntegerField(default=20)
    after_call_work_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Clear after-call work automatically after this many seconds; empty: never."
    )
    customer_ring_seconds = models.PositiveIntegerField(
        default=30, help_text="How long the simulated network rings a customer who never answers."
    )
    callback_retries = models.PositiveIntegerField(default=1, help_text="Retries of an unanswered queue callback.")
    callback_retry_delay_seconds = models.PositiveIntegerField(default=60)
    simulator_token = models.CharField(max_length=64, default=new_simulator_token, unique=True)
    last_event_sequence = models.BigIntegerField(default=0, editable=False)
    # New on every change of the instance's configuration (engine.configuration).
    config_stamp = models.UUIDField(default=uuid.uuid4, editable=False)

    class Meta:
        verbose_name = "engine settings"
        verbose_name_plural = "engine settings"

    def __str__(self) -> str:
        return f"Engine settings of {self.instance.alias}"


class AgentState(models.Model):
    class Type(models.TextChoices):
        ROUTABLE = "routable"
        NOT_ROUTABLE = "not_routable"
        OFFLINE = "offline"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="agent_states")
    state_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=20, choices=Type.choices)
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["instance", "position", "name"]
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="unique_agent_state_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"

    @property
    def arn(self) -> str:
        return f"{self.instance.arn_prefix}/agent-state/{self.state_id}"


class Queue(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="queues")
    queue_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["instance", "name"]
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="unique_queue_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def arn(self) -> str:
        return f"{self.instance.arn_prefix}/queue/{self.queue_id}"


class RoutingProfile(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="routing_profiles")
    routing_profile_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    voice_concurrency = models.PositiveSmallIntegerField(default=1, help_text="Amazon Connect allows 1.")
    chat_concurrency = models.PositiveSmallIntegerField(default=0)
    task_concurrency = models.PositiveSmallIntegerField(default=0)
    default_outbound_queue = models.ForeignKey(Queue, on_delete=models.RESTRICT, related_name="+")
    queues: "models.ManyToManyField[Queue, RoutingProfileQueue]" = models.ManyToManyField(
        Queue, through="RoutingProfileQueue", related_name="routing_profiles"
    )

    class Meta:
        ordering = ["instance", "name"]
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="unique_routing_profile_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def arn(self) -> str:
        return f"{self.instance.arn_prefix}/routing-profile/{self.routing_profile_id}"


class RoutingProfileQueue(models.Model):
    routing_profile = models.ForeignKey(RoutingProfile, on_delete=models.CASCADE, related_name="queue_entries")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="profile_entries")
    priority = models.PositiveSmallIntegerField(default=1, help_text="1 is served first.")
    delay_seconds = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["priority", "queue__name"]
        constraints = [models.UniqueConstraint(fields=["routing_profile", "queue"], name="unique_profile_queue")]

    def __str__(self) -> str:
        return f"{self.queue} (priority {self.priority})"


def default_permissions() -> list[str]:
    return ["outboundCall", "voiceId"]


def default_dialable_countries() -> list[str]:
    return ["us", "ca"]


class Agent(models.Model):
    """A Django user working as an agent of one instance, with its live state."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="agents")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agents")
    agent_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # RESTRICT (here, on the statuses and on the queues): a profile, state or queue in use is
    # not deleted alone, but an instance's deletion takes them with everything that uses them.
    # PROTECT refused the instance's deletion too.
    routing_profile = models.ForeignKey(RoutingProfile, on_delete=models.RESTRICT, related_name="agents")
    softphone_enabled = models.BooleanField(default=True)
    softphone_auto_accept = models.BooleanField(default=False)
    extension = models.CharField(max_length=20, blank=True, help_text="E.164 desk phone, used when softphone is off.")
    language = models.CharField(max_length=10, default="en_US")
    permissions = models.JSONField(default=default_permissions, blank=True)
    dialable_countries = models.JSONField(default=default_dialable_countries, blank=True)

    # Live state: the status the agent chose, the state shown (a status, or a system or
    # error state), and what comes next once the agent's contacts are cleared. Statuses are
    # not indexed: nothing looks agents up by status but the rare delete of one (a scan of
    # the instance's agents), and each status change rewrote an index page.
    status = models.ForeignKey(AgentState, on_delete=models.RESTRICT, related_name="+", db_index=False)
    status_since = models.DateTimeField()
    state_type = models.CharField(max_length=20, default="offline")
    state_name = models.CharField(max_length=40, default="Offline")
    state_since = models.DateTimeField()
    error_state = models.CharField(max_length=40, blank=True)
    next_status = models.ForeignKey(
        AgentState, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    idle_since = models.DateTimeField(null=True, blank=True, help_text="Routable and free since (longest idle first).")
    snapshot_version = models.BigIntegerField(default=0)
    snapshot_at = models.DateTimeField(
        null=True, blank=True, editable=False, db_index=True, help_text="When snapshot_version last grew."
    )
    last_event_snapshot = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["instance", "user__username"]
        constraints = [models.UniqueConstraint(fields=["instance", "user"], name="unique_agent_per_instance")]

    def __str__(self) -> str:
        return f"{self.user.get_username()} @ {self.instance.alias}"

    @property
    def arn(self) -> str:
        return f"{self.instance.arn_prefix}/agent/{self.agent_id}"

    @property
    def group_name(self) -> str:
        return f"agent.{self.pk}"


class QuickConnect(models.Model):
    class Type(models.TextChoices):
        PHONE_NUMBER = "phone_number"
        QUEUE = "queue"
        AGENT = "agent"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="quick_connects")
    quick_connect_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=20, choices=Type.choices)
    phone_number = models.CharField(max_length=20, blank=True)
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    available_in = models.ManyToManyField(
        Queue, blank=True, related_name="quick_connects", help_text="Queues whose agents see it; none: everyone."
    )

    class Meta:
        ordering = ["instance", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def arn(self) -> str:
        return f"{self.instance.arn_prefix}/transfer-destination/{self.quick_connect_id}"


class Contact(models.Model):
    class Type(models.TextChoices):
        VOICE = "voice"
        QUEUE_CALLBACK = "queue_callback"

    class InitiationMethod(models.TextChoices):
        INBOUND = "inbound"
        OUTBOUND = "outbound"
        TRANSFER = "transfer"
        CALLBACK = "callback"

    class State(models.TextChoices):
        INIT = "init"  # in a queue, waiting for an agent
        INCOMING = "incoming"  # a callback offered to an agent
        CONNECTING = "connecting"
        CONNECTED = "connected"
        ENDED = "ended"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="contacts")
    contact_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    initial_contact = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    previous_contact = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.VOICE)
    initiation_method = models.CharField(max_length=20, choices=InitiationMethod.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.INIT)
    state_since = models.DateTimeField()
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.RESTRICT, related_name="contacts")
    waiting_since = models.DateTimeField(null=True, blank=True, help_text="In the queue, waiting for an agent.")
    queue_timestamp = models.DateTimeField(null=True, blank=True)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts")
    customer_number = models.CharField(max_length=40, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    refused_by = models.JSONField(default=list, blank=True, help_text="Agents who rejected it: not offered again.")
    callback_attempt = models.PositiveSmallIntegerField(default=0)
    issues = models.JSONField(default=list, blank=True)
    customer_digits = models.TextField(blank=True, help_text="Digits the customer pressed.")
    created_at = models.DateTimeField()
    connected_to_agent_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["instance", "waiting_since"])]

    def __str__(self) -> str:
        return f"{self.type} {self.contact_id} ({self.state})"

    @property
    def initial_contact_uuid(self) -> uuid.UUID:
        return self.initial_contact.contact_id if self.initial_contact else self.contact_id


class Connection(models.Model):
    class Type(models.TextChoices):
        AGENT = "agent"
        INBOUND = "inbound"
        OUTBOUND = "outbound"

    class State(models.TextChoices):
        INIT = "init"
        CONNECTING = "connecting"
        CONNECTED = "connected"
        HOLD = "hold"
        DISCONNECTED = "disconnected"

    LIVE_STATES = (State.CONNECTING, State.CONNECTED, State.HOLD)

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="connections")
    connection_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=20, choices=Type.choices)
    initial = models.BooleanField(default=False)
    state = models.CharField(max_length=20, choices=State.choices)
    state_since = models.DateTimeField()
    mute = models.BooleanField(default=False)
    endpoint_type = models.CharField(max_length=20, default="phone_number")
    phone_number = models.CharField(max_length=40, blank=True)
    endpoint_name = models.CharField(max_length=100, blank=True)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="connections")
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    digits_sent = models.TextField(blank=True)
    missed = models.BooleanField(default=False, help_text="An agent leg that rang out: 'missed' in the CCP.")
    # Agent connections: set when the agent cleared the contact (or it left their CCP).
    cleared_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact"], condition=models.Q(initial=True), name="one_initial_connection_per_contact"
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} connection {self.connection_id} ({self.state})"


class CcpSocket(models.Model):
    """An open CCP socket, so that every process knows an agent's windows and sessions."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="sockets")
    channel_name = models.CharField(max_length=200, unique=True)
    session_key = models.CharField(max_length=64)
    opened_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now_add=True, help_text="Heartbeats keep it fresh; a stale row is ignored.")

    def __str__(self) -> str:
        return f"{self.agent} via {self.channel_name}"


class Timer(models.Model):
    class Kind(models.TextChoices):
        RING_TIMEOUT = "ring_timeout"
        AFTER_CALL_WORK = "after_call_work"
        NETWORK_OUTCOME = "network_outcome"
        CUSTOMER_NO_ANSWER = "customer_no_answer"
        CALLBACK_RETRY = "callback_retry"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="timers")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    due_at = models.DateTimeField()
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="timers")
    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    payload = models.JSONField(default=dict, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["fired_at", "due_at"])]

    def __str__(self) -> str:
        return f"{self.kind} due {self.due_at:%H:%M:%S}"


class EngineEvent(models.Model):
    """One change, in the shape of Amazon Connect's agent and contact event streams."""

    class Stream(models.TextChoices):
        AGENT = "agent"
        CONTACT = "contact"

    # Not indexed alone: the (instance, sequence) constraint's index serves lookups by instance.
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="engine_events", db_index=False)
    sequence = models.BigIntegerField()
    stream = models.CharField(max_length=10, choices=Stream.choices)
    event_type = models.CharField(max_length=40)
    # Not a unique index: ids are ccphost's own uuid4s, and such an index cost every event a
    # write to a random page of it (SQLite, 10,000 changes: 4% of a change's CPU).
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    payload = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["instance", "sequence"]
        constraints = [models.UniqueConstraint(fields=["instance", "sequence"], name="unique_event_sequence")]
        # Agent events, most of the log, have no contact: indexing their NULLs only cost
        # every such insert a page (SQLite: 13 pages written per status change, 11 without
        # this and the instance index). A lookup by contact implies one.
        indexes = [
            models.Index(fields=["contact"], condition=models.Q(contact__isnull=False), name="engine_event_contact")
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.stream} {self.event_type}"

    def as_record(self) -> dict[str, Any]:
        return dict(self.payload)
