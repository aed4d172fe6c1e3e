"""The frame of every engine change: one transaction holding the instance's engine lock,
the agents it touched, and what happens at commit (state refresh, routing, versions, pushes).

Locks, always taken in this order, so that two changes never wait for each other:

1. the instance's engine lock (its ``Instance`` row, FOR NO KEY UPDATE), held by a change
   for its whole transaction; it serializes routing and every change of contacts;
2. agent rows (FOR NO KEY UPDATE: rows that merely refer to an agent are not held up);
3. the instance's event counter (``InstanceSettings.last_event_sequence``), taken by an
   UPDATE when the change's events are written, just before commit, and held to the
   commit (on PostgreSQL sent with that statement): events are numbered in commit order,
   with no gaps, across workers.

A change that only concerns one agent and cannot route anything (a status that is not
routable, a CCP socket opening or closing, a heartbeat) takes its agent's row alone
(``agent_pk``): such changes of different agents run side by side, and wait for the
instance lock only for the event counter. Should one turn out to need more (another
agent, a contact, routing), it raises InstanceLockNeeded and ``engine_change`` runs it
again under the instance lock.

In an engine group on PostgreSQL (engine_group: the calls an engine process runs together
in one transaction) that order cannot hold across the group's changes: there the rows are
taken without waiting (NOWAIT), and the events of all its changes are numbered at its end.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from ccphost.engine import configuration
from ccphost.engine.models import Agent, AgentState, Connection, EngineEvent, InstanceSettings, Timer
from ccphost.engine.prepared import DbValues, PreparedQuery, PreparedUpdate
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

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole (from the engine process, engine.process), not by its message alone.
        return (type(self), (self.type, self.message, self.status_code))


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


def loaded_settings(instance: Instance) -> InstanceSettings:
    """The instance's settings as read with it (``select_related("instance__engine_settings")``
    on a row referring to it), or created if the instance has none yet (its first change)."""
    try:
        return instance.engine_settings
    except InstanceSettings.DoesNotExist:
        return engine_settings(instance)


LOCKED_SETTINGS = PreparedQuery(
    lambda instance_pk: (
        InstanceSettings.objects.select_for_update(of=("instance",), no_key=True)
        .select_related("instance")
        .filter(instance_id=instance_pk)
    )
)
# In an engine group on PostgreSQL (engine_group): a lock held by another transaction fails
# the change at once instead of waiting while the group holds the rows of its earlier changes.
LOCKED_SETTINGS_NOWAIT = PreparedQuery(
    lambda instance_pk: (
        InstanceSettings.objects.select_for_update(of=("instance",), no_key=True, nowait=True)
        .select_related("instance")
        .filter(instance_id=instance_pk)
    )
)
# Under one agent's lock, no routing and no dialing: the routing profile is read only if the
# configuration cache needs it (snapshots, events), not with every change, and the agent's
# states come from that cache (cached_agent_states), not from two more joins.
ONE_AGENTS_RELATIONS = ("user", "instance")
AGENT_RELATIONS = (*ONE_AGENTS_RELATIONS, "status", "next_status", "routing_profile__default_outbound_queue")
# One row by its pk: without the model's ordering (by instance alias and username).
AGENT = PreparedQuery(lambda pk: Agent.objects.select_related(*AGENT_RELATIONS).filter(pk=pk).order_by())


def has_open_legs() -> RawSQL:
    """Whether the agent row of the query has open legs (routing.open_legs), as SQL without
    parameters (Django's Exists adds one), which a PreparedQuery requires."""
    quote = connection.ops.quote_name
    legs, agents = Connection._meta, Agent._meta
    columns = {f.name: str(f.column) for f in legs.concrete_fields}
    return RawSQL(  # noqa: S611 (names from the models, no data)
        f"EXISTS (SELECT 1 FROM {quote(legs.db_table)} legs WHERE legs.{quote(columns['agent'])} = "  # noqa: S608 (names, not data)
        f"{quote(agents.db_table)}.{quote(str(agents.pk.column))} AND legs.{quote(columns['cleared_at'])} IS NULL)",
        (),
    )


# A change under one agent's lock starts here: the agent with its instance's settings, in
# one query instead of two (the settings row is not locked by such a change), and whether
# it has open legs: most such changes find none, and then need not read them (on SQLite,
# 13% of an engine change's CPU, bench.engine_cost).
#
# Of the agent's user and instance, it reads the columns such a change uses (names, ARNs):
# not a password hash or the instance's page options, whose 12 more columns cost a change
# their conversions (SQLite: 14 of the read's 24 converters were theirs). Reading another
# would cost a query: a test counts them.
ONE_AGENTS_COLUMNS = (
    *(f.name for f in Agent._meta.concrete_fields),
    *(f"user__{name}" for name in (get_user_model().USERNAME_FIELD, "first_name", "last_name")),
    *(f"instance__{name}" for name in ("alias", "name", "kind", "aws_region", "aws_instance_id", "arn_instance_id")),
    *(f"instance__engine_settings__{f.name}" for f in InstanceSettings._meta.concrete_fields),
)
AGENT_AND_SETTINGS = PreparedQuery(
    lambda pk: (
        Agent.objects.select_related(*ONE_AGENTS_RELATIONS, "instance__engine_settings")
        .only(*ONE_AGENTS_COLUMNS)
        .annotate(has_open_legs=has_open_legs())
        .filter(pk=pk)
        .order_by()
    )
)


def cached_agent_states(agent: Agent, settings: InstanceSettings) -> None:
    """Give ``agent`` (read without its states) its status and next status, from the
    instance's states in the configuration cache: a state's change gives the instance a
    new stamp, read with the agent, so the cached rows are those the agent's row refers to.
    Shared with other changes: never change one (engine.configuration)."""

    def load() -> dict[int, AgentState]:
        return {state.pk: state for state in AgentState.objects.filter(instance_id=settings.instance_id)}

    states = configuration.cached(settings, "agent_states_by_pk", load)
    for name in ("status", "next_status"):
        pk = getattr(agent, f"{name}_id")
        if pk is not None:
            # A state missing from the cache (built before it was committed) is read alone.
            setattr(agent, name, states.get(pk) or AgentState.objects.get(pk=pk))


SAVE_AGENT = PreparedUpdate(Agent)
SAVE_EVENT_SNAPSHOT = PreparedUpdate(Agent, ["last_event_snapshot"])


def locked_agent(pk: int, query: PreparedQuery[Any] = AGENT) -> Agent:
    """The agent's row, locked (lock_agent_row), read with its relations by ``query``. In an
    engine group on PostgreSQL, in one statement that does not wait (NOWAIT_LOCKED)."""
    if in_postgresql_group():
        rows = NOWAIT_LOCKED[query](pk)
    else:
        lock_agent_row(pk)
        rows = query(pk)
    if not rows:
        raise Agent.DoesNotExist(f"No agent {pk}.")
    return rows[0]


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


def nowait_locked(query: PreparedQuery[Any]) -> PreparedQuery[Any]:
    """``query`` locking the agent's row as it reads it, without waiting: a row another
    transaction holds fails the statement (LOCKED_SETTINGS_NOWAIT). Never waiting, it never
    re-checks a row against related rows (lock_agent_row): one statement, not two."""
    return PreparedQuery(lambda pk: query.build(pk).select_for_update(of=("self",), no_key=True, nowait=True))


NOWAIT_LOCKED = {query: nowait_locked(query) for query in (AGENT, AGENT_AND_SETTINGS)}


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
    legs_read: dict[int, list[Connection]] = field(default_factory=dict)  # open_legs, under one agent's lock

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
            self.add_locked_agent(locked_agent(pk))
        return self.agents[pk]

    def add_locked_agent(self, agent: Agent) -> None:
        self.agents[agent.pk] = agent
        self.free_before[agent.pk] = agent.idle_since is not None

    def open_legs(self, agent: Agent) -> list[Connection]:
        """The agent's open legs (routing.open_legs). Under one agent's lock they are read
        once per change: this change writes no leg (that needs the instance lock), and a
        change that writes one of the agent's legs also locks the agent's row, so it
        cannot commit while this change holds it."""
        from ccphost.engine.routing import open_legs

        if self.only_agent is None:
            return open_legs(agent)
        if agent.pk not in self.legs_read:
            # AGENT_AND_SETTINGS read whether there are any, with the agent, under its lock.
            self.legs_read[agent.pk] = open_legs(agent) if getattr(agent, "has_open_legs", True) else []
        return self.legs_read[agent.pk]

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


_grouped = threading.local()


@contextmanager
def engine_group() -> Iterator[None]:
    """Within, on this thread, each engine change is part of the transaction the caller
    holds (engine.process runs the calls waiting together in one, a group commit): no
    savepoint of its own, whose SAVEPOINT and RELEASE cost a change more than a BEGIN and a
    COMMIT (SQLite, measured). A change that fails having written nothing (most refusals;
    traces: SQLite's ``total_changes``, on PostgreSQL the group's statements that may write,
    count_writes) leaves the caller's transaction as it was; one that fails after writing,
    or whose statement failed on PostgreSQL, leaves it marked for rollback
    (``transaction.get_rollback()``): the caller must undo all of it.

    On PostgreSQL the group's changes take their rows without waiting (a row another
    transaction holds fails the change, and the caller undoes the group), and their events
    are numbered and written together when the group ends (write_deferred_events), its last
    statement: the event counter's row, which every worker's changes of an instance take,
    is then held for one statement and the commit, as by one change, not from a group's
    first change to its end (with which the workers' groups ran one after the other, and
    deadlocked on it against agent rows: docs/performance.md, twelfth measurement). The
    caller commits right after the block: nothing may follow it in the transaction."""
    postgresql = connection.vendor == "postgresql"
    _grouped.on, _grouped.postgresql, _grouped.deferred, _grouped.writes = True, postgresql, [], 0
    try:
        with connection.execute_wrapper(count_writes) if postgresql else nullcontext():
            yield
            if not transaction.get_rollback():
                write_deferred_events(_grouped.deferred)
    finally:
        _grouped.on, _grouped.postgresql, _grouped.deferred = False, False, []


def count_writes(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    """Counts the statements of an engine group on PostgreSQL that may write (all but
    plain reads and row locks), for traces: what SQLite's ``total_changes`` tells there."""
    if sql.lstrip()[:6].upper() != "SELECT":
        _grouped.writes += 1
    return execute(sql, params, many, context)


def in_engine_group() -> bool:
    return getattr(_grouped, "on", False)


def in_postgresql_group() -> bool:
    """In an engine group on PostgreSQL: rows taken with NOWAIT, events numbered at its end.
    (Told once per group: each look at ``connection`` goes through asgiref's Local.)"""
    return getattr(_grouped, "postgresql", False)


def change_atomic() -> AbstractContextManager[Any]:
    """The atomic block of one engine change: its own transaction, or its own savepoint in
    a caller's; in an engine group (engine_group), the caller's transaction."""
    return grouped_atomic() if in_engine_group() else transaction.atomic()


@contextmanager
def grouped_atomic() -> Iterator[None]:
    """A change's part of its engine group's transaction (change_atomic)."""
    before = traces()
    try:
        with transaction.atomic(savepoint=False):
            yield
    except BaseException:
        # Django marked the caller's transaction for rollback. If the change left nothing in
        # it (no row written, no commit hook), it was refused as it would have been alone.
        if before is not None and traces() == before:
            transaction.set_rollback(False)
        raise


def traces() -> tuple[int, int, bool] | None:
    """What this connection's transaction holds so far: the rows its statements wrote
    (SQLite), or the statements that may have written in an engine group (PostgreSQL,
    count_writes), the commit hooks waiting, and whether it can go on (SQLite ends a
    transaction itself on some errors, a full disk for one; PostgreSQL refuses any more
    statements in a transaction where one failed); None where it cannot be told."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.connection is None:
        return None
    if db.vendor == "sqlite":
        return db.connection.total_changes, len(db.run_on_commit), db.connection.in_transaction
    if in_postgresql_group():
        return _grouped.writes, len(db.run_on_commit), not failed_on_postgresql(db)
    return None


def failed_on_postgresql(db: Any) -> bool:
    from psycopg.pq import TransactionStatus

    return bool(db.connection.info.transaction_status == TransactionStatus.INERROR)


def transaction_lost() -> bool:
    """Whether this connection's transaction cannot be carried on: SQLite ended it behind
    Django's back (some errors roll it back; what follows would be written outside it, one
    statement at a time), or one of its statements failed on PostgreSQL, and a caller
    caught the error."""
    db = connections[DEFAULT_DB_ALIAS]
    if not db.in_atomic_block or db.connection is None:
        return False
    if db.vendor == "sqlite":
        return not db.connection.in_transaction
    return db.vendor == "postgresql" and failed_on_postgresql(db)


@contextmanager
def engine_lock(
    instance: Instance, now: datetime | None = None, agent_pk: int | None = None, numbered: bool = False
) -> Iterator[Changes]:
    """Lock the instance's engine (or, with ``agent_pk``, that agent alone) and yield a change
    set that is not settled: for changes that touch no agent state (a socket row, a LOGIN
    event); call ``settle`` when they do. Its events are written before the commit; in an
    engine group on PostgreSQL, at the group's end (engine_group), unless ``numbered``: a
    change whose caller needs its events' numbers as soon as it is over."""
    # The outermost transaction, not one a caller manages: then write_events may commit it.
    outermost = not connection.in_atomic_block and connection.get_autocommit()
    changes: Changes | None = None
    try:
        with change_atomic():
            now = now or timezone.now()
            if agent_pk is None:
                locked_settings = LOCKED_SETTINGS_NOWAIT if in_postgresql_group() else LOCKED_SETTINGS
                rows = locked_settings(instance.pk)
                if not rows:  # the instance's first change
                    engine_settings(instance)
                    rows = locked_settings(instance.pk)
                changes = Changes(settings=rows[0], now=now)
            else:
                agent = locked_agent(agent_pk, AGENT_AND_SETTINGS)
                if agent.instance_id != instance.pk:
                    raise ValueError(f"agent {agent_pk} is not an agent of instance {instance.pk}")
                changes = Changes(settings=loaded_settings(agent.instance), now=now, only_agent=agent_pk)
                cached_agent_states(agent, changes.settings)
                changes.add_locked_agent(agent)
            yield changes
            if not numbered and in_postgresql_group():
                _grouped.deferred.append((changes.settings, recorded(changes)))
            else:
                write_events(changes, commit=outermost)
    finally:
        if changes is not None:
            let_go_of_instance(changes.settings)


def let_go_of_instance(settings: InstanceSettings) -> None:
    """Once a change is over (its on-commit work done, when its transaction was the
    outermost): the settings row forgets the instance it was read with. Read together, an
    instance and its settings row refer to each other, a cycle that only the cycle
    collector frees: 9 objects of every change (bench.engine_cost), which made its young
    collections more frequent. Asked for again, ``settings.instance`` is read again."""
    settings._state.fields_cache.pop("instance", None)


def let_go_of_settings(instance: Instance) -> None:
    """The same cycle cut from the instance's side, for a row read outside a change with its
    instance's settings (consumers.REQUEST_AGENT): ``instance.engine_settings`` is read
    again if asked for."""
    instance._state.fields_cache.pop("engine_settings", None)


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
EVENT_VALUES = DbValues(EVENT_FIELDS)


@lru_cache(maxsize=128)
def numbered_insert(vendor: str, count: int) -> str:
    """The statement that inserts ``count`` events, numbered in order, and returns their
    primary keys and numbers; its parameters are each event's EVENT_FIELDS.

    PostgreSQL: the statement also takes the numbers from the instance's counter (its first
    parameter is the instance's pk), so the counter's row is locked for this one statement
    to the commit. SQLite: the numbers come last in each row's parameters (NEXT_SEQUENCES
    took them); its one writer at a time needs nothing more. Built once per count, instead
    of by ``bulk_create`` at every change."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in EVENT_FIELDS)
    row = ", ".join(["%s"] * len(EVENT_FIELDS))
    settings_table, events_table = (quote(m._meta.db_table) for m in (InstanceSettings, EngineEvent))
    returning = f"RETURNING {quote(EngineEvent._meta.pk.column)}, {quote('sequence')}"
    if vendor != "postgresql":
        rows = ", ".join([f"({row}, %s)"] * count)
        return f"INSERT INTO {events_table} ({columns}, {quote('sequence')}) VALUES {rows} {returning}"  # noqa: S608 (names and counts, not data)
    rows = ", ".join(f"({row}, (SELECT last FROM counter) - {count - n})" for n in range(1, count + 1))  # noqa: S608
    return (
        f"WITH counter AS (UPDATE {settings_table} SET last_event_sequence = last_event_sequence + {count} "  # noqa: S608 (names and counts, not data)
        f"WHERE instance_id = %s RETURNING last_event_sequence AS last) "
        f"INSERT INTO {events_table} ({columns}, {quote('sequence')}) VALUES {rows} {returning}"
    )


def write_events(changes: Changes, commit: bool = False) -> None:
    """Number the change's events from the instance's counter and write them, as the
    change's last statement: the counter's row stays locked from there to the commit, so
    numbers follow commit order across workers. Every change of the instance waits for
    that lock, so nothing else runs while it is held: on PostgreSQL, numbering and insert
    are one statement and, with ``commit`` (the change's transaction is the outermost, so
    nothing follows), the COMMIT goes with it in one round trip (psycopg's pipeline), not
    after a hop back to this thread's Python. Receivers of event_recorded run first, with
    events not yet numbered."""
    insert_numbered(changes.settings, recorded(changes), commit)


def recorded(changes: Changes) -> list[EngineEvent]:
    """The change's events, taken from it once its receivers of event_recorded ran and
    their announcements after the commit are queued: to be numbered and written next."""
    events = changes.events
    for event in events:
        event_recorded.send(sender=EngineEvent, event=event, instance=changes.instance, settings=changes.settings)
        # robust: a listener failing after commit must not turn a committed change into an
        # error. A named function, not a partial: Django logs a failure by its __qualname__.
        transaction.on_commit(announce_committed_event(event), robust=True)
    changes.events = []
    return events


def write_deferred_events(deferred: list[tuple[InstanceSettings, list[EngineEvent]]]) -> None:
    """The events of an engine group's changes (engine_group), numbered and written as its
    last statements, an instance's in the order of its changes: one counter update and
    insert an instance, instances in the order of their pks (their counters' locks are taken
    in that order), and with the last, the commit (write_events), as the group ends."""
    by_instance: dict[int, tuple[InstanceSettings, list[EngineEvent]]] = {}
    for settings, events in deferred:
        if events:
            by_instance.setdefault(settings.instance_id, (settings, []))[1].extend(events)
    last = len(by_instance) - 1
    outermost = len(connection.atomic_blocks) == 1
    for n, instance_pk in enumerate(sorted(by_instance)):
        settings, events = by_instance[instance_pk]
        insert_numbered(settings, events, commit=outermost and n == last)


def insert_numbered(settings: InstanceSettings, events: list[EngineEvent], commit: bool = False) -> None:
    """Number ``events`` from the instance's counter and insert them (write_events)."""
    if not events:
        return
    count = len(events)
    db = connections[DEFAULT_DB_ALIAS]  # once: every use of the `connection` proxy looks it up
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            params: list[Any] = [settings.instance_id]
            for event in events:
                params += EVENT_VALUES(event, db)
        else:
            table = db.ops.quote_name(InstanceSettings._meta.db_table)
            cursor.execute(NEXT_SEQUENCES.format(table=table), [count, settings.instance_id])
            (last,) = cursor.fetchone()
            params = []
            for number, event in enumerate(events, start=last - count + 1):
                params += [*EVENT_VALUES(event, db), number]
        if commit and db.vendor == "postgresql":
            # Django's own commit at the atomic block's end then finds nothing to commit
            # (psycopg skips it) and runs the on_commit callbacks as usual.
            # (A failure of either is Django's error, as cursor.execute's would be.)
            with db.wrap_database_errors, db.connection.pipeline():
                cursor.execute(numbered_insert(db.vendor, count), params)
                db.connection.commit()
        else:
            cursor.execute(numbered_insert(db.vendor, count), params)
        pks = {sequence: pk for pk, sequence in cursor.fetchall()}  # RETURNING's order is not promised
    last = max(pks)
    for number, event in enumerate(events, start=last - count + 1):
        event.pk, event.sequence = pks[number], number
        event._state.adding, event._state.db = False, db.alias  # as bulk_create leaves them
    settings.last_event_sequence = last


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
