"""The frame of every engine change: one transaction holding the instance's engine lock,
the agents it touched, and what happens at commit (state refresh, routing, versions, pushes)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from ccphost.engine import configuration
from ccphost.engine.models import Agent, Connection, InstanceSettings, Timer
from ccphost.engine.prepared import PreparedQuery
from ccphost.instances.models import Instance

T = TypeVar("T")


class EngineError(Exception):
    """A refused request: nothing was changed. `type` follows Amazon Connect's error names."""

    def __init__(self, type_: str, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.status_code = status_code

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "statusCode": self.status_code}


def invalid_state(message: str) -> EngineError:
    return EngineError("InvalidStateException", message, 409)


def not_found(message: str) -> EngineError:
    return EngineError("ResourceNotFoundException", message, 404)


def invalid_parameter(message: str) -> EngineError:
    return EngineError("InvalidParameterException", message, 400)


def engine_settings(instance: Instance) -> InstanceSettings:
    settings, _ = InstanceSettings.objects.get_or_create(instance=instance)
    return settings


LOCKED_SETTINGS = PreparedQuery(
    lambda instance_pk: (
        InstanceSettings.objects.select_for_update(of=("self",))
        .select_related("instance")
        .filter(instance_id=instance_pk)
    )
)
LOCKED_AGENT = PreparedQuery(
    lambda pk: (
        Agent.objects.select_for_update(of=("self",))
        .select_related("user", "status", "next_status", "routing_profile__default_outbound_queue", "instance")
        .filter(pk=pk)
    )
)


@dataclass
class Changes:
    """What one engine transaction changed; `flush` settles it before commit."""

    settings: InstanceSettings
    now: datetime
    agents: dict[int, Agent] = field(default_factory=dict)
    contacts_queued: bool = False  # routing has waiting contacts to look at

    @property
    def instance(self) -> Instance:
        return self.settings.instance

    def agent(self, pk: int) -> Agent:
        """The one locked copy of an agent row in this transaction."""
        if pk not in self.agents:
            rows = LOCKED_AGENT(pk)
            if not rows:
                raise Agent.DoesNotExist(f"No agent {pk}.")
            self.agents[pk] = rows[0]
        return self.agents[pk]

    def cached(self, key: Any, build: Callable[[], T]) -> T:
        """The instance's configuration, cached per process (engine.configuration)."""
        return configuration.cached(self.settings, key, build)

    def agent_changed(self, agent: Agent) -> Agent:
        return self.agent(agent.pk)

    def schedule(self, kind: str, seconds: float, **targets: Any) -> Timer:
        return Timer.objects.create(
            instance=self.instance, kind=kind, due_at=self.now + timedelta(seconds=seconds), **targets
        )


@contextmanager
def engine_lock(instance: Instance, now: datetime | None = None) -> Iterator[Changes]:
    """Lock the instance's engine and yield a change set that is not settled: for changes
    that touch no agent state (a socket row, a LOGIN event); call ``settle`` when they do."""
    with transaction.atomic():
        rows = LOCKED_SETTINGS(instance.pk)
        if not rows:  # the instance's first change
            engine_settings(instance)
            rows = LOCKED_SETTINGS(instance.pk)
        yield Changes(settings=rows[0], now=now or timezone.now())


@contextmanager
def engine_transaction(instance: Instance, now: datetime | None = None) -> Iterator[Changes]:
    """Lock the instance's engine, yield the change set, settle it and push snapshots on commit."""
    with engine_lock(instance, now) as changes:
        yield changes
        settle(changes)


def settle(changes: Changes) -> dict[int, list[Connection]]:
    """Refresh what each touched agent's CCP shows, route waiting contacts, record the
    agents' events, and push their new snapshots once the transaction commits. Returns
    each touched agent's open legs (routing.open_legs), by agent pk."""
    from ccphost.engine import events, routing, snapshots

    legs = {pk: routing.refresh_agent_state(changes, agent) for pk, agent in list(changes.agents.items())}
    # Routing has work only if a contact joined a queue or an agent is free to take one.
    free = any(routing.is_free(agent, legs[pk]) for pk, agent in changes.agents.items())
    if (changes.contacts_queued or free) and routing.route_waiting_contacts(changes):
        legs = {}
    for pk, agent in list(changes.agents.items()):  # routing may have locked more agents
        if pk not in legs:
            legs[pk] = routing.refresh_agent_state(changes, agent)
    for pk, agent in changes.agents.items():
        events.record_agent_change(changes, agent, legs[pk])
        agent.snapshot_version += 1
        agent.snapshot_at = timezone.now()  # the CCP sockets' watcher looks for recent ones
        agent.save()
        snapshots.push_on_commit(changes, agent, legs[pk])
    return legs
