"""The frame of every engine change: one transaction holding the instance's engine lock,
the agents it touched, and what happens at commit (state refresh, routing, versions, pushes).

Locks, always taken in this order, so that two changes never wait for each other:

1. the instance's engine lock (its ``Instance`` row, FOR NO KEY UPDATE), held by a change
   for its whole transaction; it serializes routing and every change of contacts;
2. agent rows (FOR NO KEY UPDATE: rows that merely refer to an agent are not held up);
3. the instance's event counter (``InstanceSettings.last_event_sequence``), taken by an
   UPDATE when the change's events are written, just before commit, and held to the
   commit: events are numbered in commit order, with no gaps, across workers.

A change that only concerns one agent and cannot route anything (a status that is not
routable, a CCP socket opening or closing, a heartbeat) takes its agent's row alone
(``agent_pk``): such changes of different agents run side by side, and wait for the
instance lock only for the event counter. Should one turn out to need more (another
agent, a contact, routing), it raises InstanceLockNeeded and ``engine_change`` runs it
again under the instance lock.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connection, transaction
from django.utils import timezone

from ccphost.engine import configuration
from ccphost.engine.models import Agent, Connection, EngineEvent, InstanceSettings, Timer
from ccphost.engine.prepared import PreparedQuery, PreparedUpdate, db_values
from ccphost.engine.signals import event_committed, event_recorded
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


class InstanceLockNeeded(Exception):
    """A change under one agent's lock turned out to need the instance lock."""


def engine_settings(instance: Instance) -> InstanceSettings:
    settings, _ = InstanceSettings.objects.get_or_create(instance=instance)
    return settings


LOCKED_SETTINGS = PreparedQuery(
    lambda instance_pk: (
        InstanceSettings.objects.select_for_update(of=("instance",), no_key=True)
        .select_related("instance")
        .filter(instance_id=instance_pk)
    )
)
SETTINGS = PreparedQuery(
    lambda instance_pk: InstanceSettings.objects.select_related("instance").filter(instance_id=instance_pk)
)
AGENT = PreparedQuery(
    lambda pk: Agent.objects.select_related(
        "user", "status", "next_status", "routing_profile__default_outbound_queue", "instance"
    ).filter(pk=pk)
)


SAVE_AGENT = PreparedUpdate(Agent)
SAVE_EVENT_SNAPSHOT = PreparedUpdate(Agent, ["last_event_snapshot"])


def lock_agent_row(pk: int) -> None:
    """Lock the agent's row alone, before reading it with its relations: a locking read
    joined to them would, after waiting for another change of the agent, re-check the new
    row against the old related rows (PostgreSQL's READ COMMITTED) and drop it once its
    status changed. No key update: rows that merely refer to the agent are not held up."""
    if not connection.features.has_select_for_update:
        return  # SQLite: one write transaction at a time (transaction_mode IMMEDIATE)
    table, column = (connection.ops.quote_name(name) for name in (Agent._meta.db_table, Agent._meta.pk.column))
    lock = f"SELECT {column} FROM {table} WHERE {column} = %s {connection.ops.for_update_sql(no_key=True)}"  # noqa: S608 (names, not data)
    with connection.cursor() as cursor:
        cursor.execute(lock, [pk])


@dataclass
class Changes:
    """What one engine transaction changed; `flush` settles it before commit."""

    settings: InstanceSettings
    now: datetime
    only_agent: int | None = None  # the one agent locked, without the instance lock
    agents: dict[int, Agent] = field(default_factory=dict)
    contacts_queued: bool = False  # routing has waiting contacts to look at
    events: list[EngineEvent] = field(default_factory=list)  # numbered and written at the end
    free_before: dict[int, bool] = field(default_factory=dict)

    @property
    def instance(self) -> Instance:
        return self.settings.instance

    def require_instance_lock(self, reason: str) -> None:
        if self.only_agent is not None:
            raise InstanceLockNeeded(reason)

    def agent(self, pk: int) -> Agent:
        """The one locked copy of an agent row in this transaction."""
        if pk not in self.agents:
            if self.only_agent is not None and pk != self.only_agent:
                raise InstanceLockNeeded(f"agent {pk} besides agent {self.only_agent}")
            lock_agent_row(pk)
            rows = AGENT(pk)
            if not rows:
                raise Agent.DoesNotExist(f"No agent {pk}.")
            self.agents[pk] = rows[0]
            self.free_before[pk] = rows[0].idle_since is not None
        return self.agents[pk]

    def cached(self, key: Any, build: Callable[[], T]) -> T:
        """The instance's configuration, cached per process (engine.configuration)."""
        return configuration.cached(self.settings, key, build)

    def agent_changed(self, agent: Agent) -> Agent:
        return self.agent(agent.pk)

    def schedule(self, kind: str, seconds: float, **targets: Any) -> Timer:
        self.require_instance_lock(f"a {kind} timer")
        return Timer.objects.create(
            instance=self.instance, kind=kind, due_at=self.now + timedelta(seconds=seconds), **targets
        )


@contextmanager
def engine_lock(instance: Instance, now: datetime | None = None, agent_pk: int | None = None) -> Iterator[Changes]:
    """Lock the instance's engine (or, with ``agent_pk``, that agent alone) and yield a change
    set that is not settled: for changes that touch no agent state (a socket row, a LOGIN
    event); call ``settle`` when they do. Its events are written before the commit."""
    with transaction.atomic():
        query = LOCKED_SETTINGS if agent_pk is None else SETTINGS
        rows = query(instance.pk)
        if not rows:  # the instance's first change
            engine_settings(instance)
            rows = query(instance.pk)
        changes = Changes(settings=rows[0], now=now or timezone.now(), only_agent=agent_pk)
        if agent_pk is not None:
            changes.agent(agent_pk)
        yield changes
        write_events(changes)


@contextmanager
def engine_transaction(
    instance: Instance, now: datetime | None = None, agent_pk: int | None = None
) -> Iterator[Changes]:
    """Lock the instance's engine (or one agent: engine_lock), yield the change set, settle
    it and push snapshots on commit."""
    with engine_lock(instance, now, agent_pk) as changes:
        yield changes
        settle(changes)


def engine_change(
    instance: Instance, body: Callable[[Changes], T], agent_pk: int | None = None, settled: bool = True
) -> T:
    """``body(changes)`` in an engine transaction (``settled=False``: engine_lock, the body
    settles if it must). With ``agent_pk``, first under that agent's lock alone; if it needs
    more (InstanceLockNeeded), rolled back and run again under the instance lock."""
    lock = engine_transaction if settled else engine_lock
    if agent_pk is not None:
        try:
            with lock(instance, agent_pk=agent_pk) as changes:
                return body(changes)
        except InstanceLockNeeded:
            pass
    with lock(instance) as changes:
        return body(changes)


NEXT_SEQUENCES = (
    "UPDATE {table} SET last_event_sequence = last_event_sequence + %s WHERE instance_id = %s "
    "RETURNING last_event_sequence"
)
EVENT_FIELDS = [f for f in EngineEvent._meta.concrete_fields if not f.primary_key and f.name != "sequence"]


@lru_cache(maxsize=64)
def numbered_insert(count: int) -> str:
    """PostgreSQL: one statement that takes ``count`` numbers from the instance's counter and
    inserts that many events with them, in order (parameters: the instance pk, then each
    event's EVENT_FIELDS)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in EVENT_FIELDS)
    row = ", ".join(["%s"] * len(EVENT_FIELDS))
    rows = ", ".join(f"({row}, (SELECT last FROM counter) - {count - n})" for n in range(1, count + 1))  # noqa: S608
    settings_table, events_table = (quote(m._meta.db_table) for m in (InstanceSettings, EngineEvent))
    return (
        f"WITH counter AS (UPDATE {settings_table} SET last_event_sequence = last_event_sequence + {count} "  # noqa: S608 (names and counts, not data)
        f"WHERE instance_id = %s RETURNING last_event_sequence AS last) "
        f"INSERT INTO {events_table} ({columns}, {quote('sequence')}) VALUES {rows} "
        f"RETURNING {quote(EngineEvent._meta.pk.column)}, {quote('sequence')}"
    )


def write_events(changes: Changes) -> None:
    """Number the change's events from the instance's counter and write them, as the
    change's last statement: the counter's row stays locked from there to the commit, so
    numbers follow commit order across workers. Every change of the instance waits for
    that lock, so nothing else runs while it is held: on PostgreSQL, numbering and insert
    are one statement. Receivers of event_recorded run first, with events not yet numbered."""
    events, changes.events = changes.events, []
    if not events:
        return
    for event in events:
        event_recorded.send(sender=EngineEvent, event=event, instance=changes.instance, settings=changes.settings)
        # robust: a listener failing after commit must not turn a committed change into an
        # error. A named function, not a partial: Django logs a failure by its __qualname__.
        transaction.on_commit(announce_committed_event(event), robust=True)
    if connection.vendor == "postgresql":
        params: list[Any] = [changes.instance.pk]
        for event in events:
            params += db_values(event, EVENT_FIELDS, connection)
        with connection.cursor() as cursor:
            cursor.execute(numbered_insert(len(events)), params)
            pks = {sequence: pk for pk, sequence in cursor.fetchall()}  # RETURNING's order is not promised
        last = max(pks)
        for number, event in enumerate(events, start=last - len(events) + 1):
            event.pk, event.sequence = pks[number], number
            event._state.adding, event._state.db = False, connection.alias  # as bulk_create leaves them
        changes.settings.last_event_sequence = last
        return
    table = connection.ops.quote_name(InstanceSettings._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(NEXT_SEQUENCES.format(table=table), [len(events), changes.instance.pk])
        (last,) = cursor.fetchone()
    changes.settings.last_event_sequence = last
    for number, event in enumerate(events, start=last - len(events) + 1):
        event.sequence = number
    EngineEvent.objects.bulk_create(events)


def announce_committed_event(event: EngineEvent) -> Callable[[], None]:
    def announce_committed_event() -> None:
        event_committed.send(sender=EngineEvent, event=event)

    return announce_committed_event


def settle(changes: Changes) -> dict[int, list[Connection]]:
    """Refresh what each touched agent's CCP shows, route waiting contacts, record the
    agents' events, and push their new snapshots once the transaction commits. Returns
    each touched agent's open legs (routing.open_legs), by agent pk."""
    from ccphost.engine import events, routing, snapshots

    legs = {pk: routing.refresh_agent_state(changes, agent) for pk, agent in list(changes.agents.items())}
    # Routing has work only if a contact joined a queue or an agent is free to take one;
    # under one agent's lock, only if that agent just became free (routing ran when it did).
    free = [pk for pk, agent in changes.agents.items() if routing.is_free(agent, legs[pk])]
    if changes.only_agent is not None and not changes.contacts_queued:
        free = [pk for pk in free if not changes.free_before[pk]]
    if changes.contacts_queued or free:
        changes.require_instance_lock("routing")
        if routing.route_waiting_contacts(changes):
            legs = {}
    for pk, agent in list(changes.agents.items()):  # routing may have locked more agents
        if pk not in legs:
            legs[pk] = routing.refresh_agent_state(changes, agent)
    for pk, agent in changes.agents.items():
        events.record_agent_change(changes, agent, legs[pk])
        agent.snapshot_version += 1
        agent.snapshot_at = timezone.now()  # the CCP sockets' watcher looks for recent ones
        SAVE_AGENT(agent)
        snapshots.push_on_commit(changes, agent, legs[pk])
    return legs
