"""The engine's locks (engine.core): changes that concern one agent and route nothing take
that agent's row alone; everything else takes the instance lock; events are numbered in
commit order, without gaps, whatever runs side by side."""

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections, transaction

from ccphost.engine import services, sockets
from ccphost.engine.core import InstanceLockNeeded, engine_change, engine_lock
from ccphost.engine.models import Agent, Contact, EngineEvent
from tests.engine.conftest import call, fresh, state


class Background(threading.Thread):
    """An action in a thread of its own (with its own database connection)."""

    def __init__(self, action: Any) -> None:
        super().__init__(daemon=True)
        self.action, self.error, self.finished = action, None, threading.Event()

    def run(self) -> None:
        try:
            self.action()
        except Exception as error:
            self.error = error
        finally:
            self.finished.set()
            connections.close_all()


@pytest.fixture
def hold_instance_lock(concurrent_db, center):
    """Have another thread take the instance's engine lock and hold it until the test sets
    the event returned."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite runs one write transaction at a time: row locks are PostgreSQL's")
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine_lock(center):
            locked.set()
            release.wait(30)

    holder = Background(hold)

    def start() -> threading.Event:
        holder.start()
        assert locked.wait(10)
        return release

    yield start
    release.set()
    if holder.is_alive():
        holder.join(30)


def test_a_status_that_routes_nothing_does_not_wait_for_the_instance_lock(
    hold_instance_lock, center, make_agent, basic_queue
):
    ada, bob = make_agent("ada"), make_agent("bob", available=False)
    release = hold_instance_lock()
    to_break = Background(lambda: services.put_agent_state(ada, state(center, "Break")))
    to_available = Background(lambda: services.put_agent_state(bob, state(center, "Available")))
    opening = Background(lambda: sockets.open_ccp_socket(fresh(ada), "chan-ada", "session-ada"))
    for action in (to_break, to_available, opening):
        action.start()
    assert to_break.finished.wait(10) and to_break.error is None
    assert opening.finished.wait(10) and opening.error is None
    assert fresh(ada).state_name == "Break"
    assert not to_available.finished.wait(0.5), to_available.error  # routable: it may route, so it waits
    release.set()
    assert to_available.finished.wait(10) and to_available.error is None
    assert fresh(bob).state_name == "Available"


def test_events_are_numbered_in_commit_order_without_gaps(concurrent_db, center, make_agent, basic_queue):
    """Agents toggling between two statuses (their own locks) while calls arrive and agents
    become available (the instance lock); a reader never sees a number before the ones
    below it, as a subscriber reading "after N" would miss them."""
    togglers = [make_agent(f"t{i}", available=False) for i in range(4)]
    routers = [make_agent(f"r{i}", available=False) for i in range(2)]
    statuses = [state(center, "Break"), state(center, "Lunch")]
    available = state(center, "Available")
    stop, gaps = threading.Event(), []

    def toggle(agent: Agent) -> None:
        for n in range(15):
            services.put_agent_state(agent, statuses[n % 2])

    def route(agent: Agent) -> None:
        for n in range(5):
            services.put_agent_state(agent, available)
            call(center, basic_queue)
            services.put_agent_state(agent, statuses[n % 2])

    def read() -> None:
        while not stop.is_set():
            numbers = list(EngineEvent.objects.filter(instance=center).values_list("sequence", flat=True))
            if numbers != list(range(1, len(numbers) + 1)):
                gaps.append(numbers)

    reader = Background(read)
    reader.start()
    workers = [Background(lambda a=a: toggle(a)) for a in togglers] + [
        Background(lambda a=a: route(a)) for a in routers
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    stop.set()
    reader.join(30)
    assert [w.error for w in workers] == [None] * len(workers)
    assert gaps == []
    numbers = list(EngineEvent.objects.filter(instance=center).order_by("sequence").values_list("sequence", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    for agent in togglers:
        changes = EngineEvent.objects.filter(agent=agent, event_type="STATE_CHANGE").order_by("sequence")
        names = [e.payload["CurrentAgentSnapshot"]["AgentStatus"]["Name"] for e in changes]
        assert names == ["Break", "Lunch"] * 7 + ["Break"]
        assert fresh(agent).last_event_snapshot == changes.last().payload["CurrentAgentSnapshot"]
    for contact in Contact.objects.filter(instance=center, waiting_since__isnull=False):
        free = Agent.objects.filter(instance=center, state_type="routable", idle_since__isnull=False)
        assert not free.exists(), f"{contact} waits while {list(free)} are free"


@pytest.mark.django_db
def test_a_change_that_needs_more_than_its_agent_runs_again_under_the_instance_lock(center, make_agent):
    ada, bob = make_agent("ada"), make_agent("bob")
    scopes = []

    def touch_both(changes: Any) -> str:
        scopes.append(changes.only_agent)
        changes.agent(ada.pk)
        changes.agent(bob.pk)  # another agent: the instance lock is needed
        return "done"

    assert engine_change(center, touch_both, agent_pk=ada.pk) == "done"
    assert scopes == [ada.pk, None]
    with pytest.raises(InstanceLockNeeded), engine_lock(center, agent_pk=ada.pk) as changes:
        changes.require_instance_lock("routing")


@pytest.mark.django_db
def test_closing_the_second_browser_routes_the_waiting_contact(center, make_agent, basic_queue):
    """Closing a socket is an agent's change, until it ends MultipleCcpWindows: the agent is
    routable again and the waiting call is offered at once (under the instance lock)."""
    ada = make_agent("ada")
    sockets.open_ccp_socket(ada, "chan-a", "session-a")
    sockets.open_ccp_socket(ada, "chan-b", "session-b")
    contact = call(center, basic_queue)
    assert fresh(contact).waiting_since is not None
    sockets.close_ccp_socket(ada, "chan-b")
    assert fresh(contact).agent == ada
    assert fresh(ada).state_name == "PendingBusy"


@pytest.mark.django_db
def test_a_heartbeat_records_its_event_without_a_new_snapshot(center, make_agent):
    ada = make_agent("ada")
    version = fresh(ada).snapshot_version
    started = time.monotonic()
    sockets.record_heartbeat(ada)
    assert EngineEvent.objects.filter(agent=ada, event_type="HEART_BEAT").count() == 1
    assert fresh(ada).snapshot_version == version
    assert time.monotonic() - started < 5


def test_a_change_commits_with_its_last_statement_and_then_announces(concurrent_db, center, make_agent):
    """Its own transaction (the outermost): on PostgreSQL the COMMIT goes with the events'
    insert; the change is then visible to another connection, and the callbacks that wait
    for the commit (event announcements) run as with any commit."""
    from ccphost.engine.signals import event_committed

    ada = make_agent("ada")
    announced: list[str] = []

    def collect(sender: Any, event: EngineEvent, **kwargs: Any) -> None:
        announced.append(event.event_type)

    event_committed.connect(collect)
    try:
        services.put_agent_state(ada, state(center, "Break"))
    finally:
        event_committed.disconnect(collect)
    assert announced == ["STATE_CHANGE"]
    seen: list[str] = []
    reader = Background(lambda: seen.append(Agent.objects.get(pk=ada.pk).status.name))
    reader.start()
    assert reader.finished.wait(10) and reader.error is None
    assert seen == ["Break"]
    assert not connection.in_atomic_block and connection.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_a_change_inside_a_callers_transaction_is_not_committed_before_it(center, make_agent):
    """Nested in the caller's transaction, a change leaves the commit to the caller: rolled
    back, the caller loses the change and its events alike."""
    ada = make_agent("ada")
    events = EngineEvent.objects.count()
    with pytest.raises(RuntimeError, match="caller fails"), transaction.atomic():
        services.put_agent_state(ada, state(center, "Break"))
        assert fresh(ada).status.name == "Break"
        raise RuntimeError("caller fails")
    assert fresh(ada).status.name == "Available"
    assert EngineEvent.objects.count() == events


def test_changes_in_an_engine_group_share_the_callers_transaction(make_agent, center):
    from django.test.utils import CaptureQueriesContext

    from ccphost.engine.core import engine_group

    ada, bob = make_agent("ada", available=False), make_agent("bob", available=False)
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), engine_group():
        services.put_agent_state(fresh(ada), state(center, "Break"))
        services.put_agent_state(fresh(bob), state(center, "Lunch"))
    # The test's own transaction makes the group's a savepoint: its only one.
    savepoints = [q["sql"].split()[0] for q in queries.captured_queries if "SAVEPOINT" in q["sql"]]
    assert savepoints == ["SAVEPOINT", "RELEASE"]
    assert [fresh(ada).status.name, fresh(bob).status.name] == ["Break", "Lunch"]
    last = list(EngineEvent.objects.filter(instance=center).order_by("-sequence")[:2])[::-1]
    assert [(e.agent_id, e.sequence - last[0].sequence) for e in last] == [(ada.pk, 0), (bob.pk, 1)]


def test_a_change_refused_in_an_engine_group_undoes_it_only_if_it_wrote(ada, center):
    from ccphost.engine.core import EngineError, engine_group, invalid_state

    other = state(center, "Break")
    other.instance_id = -1  # a state of no instance of this agent's: refused before writing
    with transaction.atomic():
        with pytest.raises(EngineError):
            services.put_agent_state(fresh(ada), other)
        assert not transaction.get_rollback()  # alone: its own savepoint undid it
        with engine_group():
            with pytest.raises(EngineError):
                services.put_agent_state(fresh(ada), other)
            # It wrote nothing (SQLite's total_changes; the statements that may write,
            # counted on PostgreSQL): the group goes on.
            assert not transaction.get_rollback()
            with pytest.raises(EngineError), engine_lock(center):
                Agent.objects.filter(pk=ada.pk).update(extension="+15555550100")
                raise invalid_state("Refused after writing.")
            assert transaction.get_rollback()  # in a group: the caller undoes it all
            transaction.set_rollback(False)
            with pytest.raises(EngineError), engine_lock(center) as changes:
                changes.schedule("no_answer", 20)  # a statement that writes, then a hook
                raise invalid_state("Refused after scheduling.")
            assert transaction.get_rollback()
        transaction.set_rollback(True)


def test_a_change_that_needs_the_instance_lock_in_an_engine_group_runs_again_under_it(center, make_agent, basic_queue):
    """A missed call cleared by a status that routes nothing: the change starts under the
    agent's lock, finds it needs the instance's (before writing anything), and runs again
    under it, in the same group."""
    from ccphost.engine.core import engine_group
    from ccphost.engine.timers import run_due_timers
    from tests.engine.conftest import later

    ada = make_agent("ada")
    call(center, basic_queue)
    assert run_due_timers(later(21)) == 1
    assert fresh(ada).state_name == "MissedCallAgent"
    with transaction.atomic(), engine_group():
        services.put_agent_state(fresh(ada), state(center, "Break"))
        assert not transaction.get_rollback()
    assert fresh(ada).state_name == "Break"
    assert not fresh(ada).error_state


def test_an_engine_group_numbers_its_events_as_it_ends_on_postgresql(make_agent, center):
    """On PostgreSQL a group's events are numbered and written together at its end (one
    hold of the instance's counter), in the order of its changes; a change whose caller
    needs its numbers (``numbered``) has them at once. SQLite numbers each as it ends."""
    from ccphost.engine.core import engine_group
    from ccphost.engine.events import record_agent_event

    ada, bob = make_agent("ada", available=False), make_agent("bob", available=False)
    before = EngineEvent.objects.filter(instance=center).count()
    deferred = connection.vendor == "postgresql"
    with transaction.atomic(), engine_group():
        services.put_agent_state(fresh(ada), state(center, "Break"))
        with engine_lock(center, numbered=True) as changes:
            numbered = record_agent_event(changes, changes.agent(ada.pk), "HEART_BEAT")
        assert numbered.sequence is not None
        services.put_agent_state(fresh(bob), state(center, "Lunch"))
        written = EngineEvent.objects.filter(instance=center).count() - before
        assert written == (1 if deferred else 3)
    events = list(EngineEvent.objects.filter(instance=center).order_by("sequence"))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    last = [(e.agent_id, e.event_type) for e in events[-3:]]
    if deferred:  # numbered first: the others waited for the group's end
        assert last == [(ada.pk, "HEART_BEAT"), (ada.pk, "STATE_CHANGE"), (bob.pk, "STATE_CHANGE")]
    else:
        assert last == [(ada.pk, "STATE_CHANGE"), (ada.pk, "HEART_BEAT"), (bob.pk, "STATE_CHANGE")]


@pytest.fixture
def hold_agent_lock(concurrent_db, center):
    """Have another thread take an agent's row lock (a change of that agent alone) and hold
    it until the test sets the event returned."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite runs one write transaction at a time: row locks are PostgreSQL's")
    held: list[threading.Event] = []

    def start(agent: Agent) -> threading.Event:
        locked, release = threading.Event(), threading.Event()
        held.append(release)

        def hold() -> None:
            with engine_lock(center, agent_pk=agent.pk):
                locked.set()
                release.wait(30)

        Background(hold).start()
        assert locked.wait(10)
        return release

    yield start
    for release in held:
        release.set()


@pytest.mark.parametrize("held", ["instance", "agent"])
def test_a_change_in_an_engine_group_does_not_wait_for_a_lock_held_elsewhere(
    held, hold_instance_lock, hold_agent_lock, center, make_agent
):
    """Waiting while holding the rows of its earlier changes could deadlock against another
    worker's group: a change in a group fails at once instead (PostgreSQL's NOWAIT), and
    leaves the group to be undone (its calls then run alone, and wait)."""
    from django.db import OperationalError

    from ccphost.engine.core import engine_group, transaction_lost

    ada, bob = make_agent("ada"), make_agent("bob", available=False)
    release = hold_instance_lock() if held == "instance" else hold_agent_lock(bob)
    started = time.monotonic()
    with transaction.atomic(), engine_group():
        services.put_agent_state(fresh(ada), state(center, "Break"))  # its own row: taken
        with pytest.raises(OperationalError, match="lock"):
            name = "Available" if held == "instance" else "Lunch"  # routable: the instance lock
            services.put_agent_state(fresh(bob), state(center, name))
        assert transaction.get_rollback() and transaction_lost()
    assert time.monotonic() - started < 2
    assert fresh(ada).state_name == "Available"  # undone with the group
    release.set()
    services.put_agent_state(fresh(bob), state(center, "Lunch"))  # alone, it waits: taken
    assert fresh(bob).state_name == "Lunch"
