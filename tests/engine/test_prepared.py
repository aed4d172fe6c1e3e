"""engine.prepared: a lookup compiled once gives the same rows and relations as the ORM,
for any later arguments, on this thread and others; a shape it cannot prepare is refused."""

import gc
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from ccphost.engine import core, routing, services, snapshots
from ccphost.engine.models import Agent, Queue
from ccphost.engine.prepared import PreparedQuery, PreparedUpdate
from tests.engine.conftest import call, fresh, leg_of, state

pytestmark = pytest.mark.django_db(transaction=True)

RELATED = ("user", "status", "next_status", "routing_profile__default_outbound_queue", "instance")


def field_values(obj):
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_agent_rows_and_relations_match_the_orm_for_later_arguments(make_agent):
    agents = [make_agent(name) for name in ("ada", "bob", "cyd")]
    prepared = PreparedQuery(lambda pk: Agent.objects.select_related(*RELATED).filter(pk=pk))
    for agent in agents:  # the first call prepares, the next ones reuse the plan
        (row,) = prepared(agent.pk)
        expected = Agent.objects.select_related(*RELATED).get(pk=agent.pk)
        assert field_values(row) == field_values(expected)
        with CaptureQueriesContext(connection) as queries:
            related = [row.user.username, row.status.name, row.routing_profile.default_outbound_queue.name]
            assert row.next_status is None
            assert row.instance.alias == expected.instance.alias
        assert related == [expected.user.username, expected.status.name, "BasicQueue"]
        assert len(queries) == 0, "relations come with the row"
    assert prepared(10**9) == []


def test_open_legs_follow_the_contact_through_its_life(center, ada, basic_queue):
    assert routing.open_legs(ada) == []
    contact = call(center, basic_queue)
    (leg,) = routing.open_legs(fresh(ada))
    assert leg.pk == leg_of(contact, ada).pk and leg.state == "connecting"
    assert leg.contact.queue.name == basic_queue.name and leg.contact.initial_contact_uuid == contact.contact_id
    services.accept_contact(fresh(ada), str(contact.contact_id))
    assert [leg.state for leg in routing.open_legs(fresh(ada))] == ["connected"]


def test_the_locked_settings_and_agent_are_the_engines_rows(center, ada):
    with core.engine_lock(center) as changes:
        assert changes.settings.instance_id == center.pk and changes.settings.instance.alias == center.alias
        assert changes.agent(ada.pk).user.username == "ada"
        with pytest.raises(Agent.DoesNotExist):
            changes.agent(10**9)


def legs_reads(queries: CaptureQueriesContext) -> list[str]:
    """The reads of an agent's open legs (routing.OPEN_LEGS)."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('SELECT "engine_connection"') and 'WHERE ("engine_connection"."agent_id" =' in q["sql"]
    ]


def test_a_change_under_one_agents_lock_reads_its_rows_once(center, ada):
    """The agent comes with its instance's settings (no query of its own) and with whether
    it has open legs: with none, they are not read. Its routing profile is not read once
    the configuration cache has it."""
    services.put_agent_state(ada, state(center, "Lunch"))  # the cache filled
    agent, brk = fresh(ada), state(center, "Break")
    assert agent.instance == center  # the caller's own read
    with CaptureQueriesContext(connection) as queries:
        services.put_agent_state(agent, brk)
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert legs_reads(queries) == []
    assert [sql for sql in selects if '"engine_routingprofile"' in sql] == []
    assert [sql for sql in selects if 'FROM "engine_instancesettings"' in sql] == []
    (agent_read,) = [sql for sql in selects if 'FROM "engine_agent" INNER JOIN' in sql]
    assert '"engine_instancesettings"' in agent_read
    # Nothing else is read: not the agent's states (the configuration cache has them), nor
    # a column of its user or instance that the read leaves out (engine.core.ONE_AGENTS_COLUMNS).
    lock = [sql for sql in selects if "FOR NO KEY UPDATE" in sql and "INNER JOIN" not in sql]
    assert [sql for sql in selects if sql not in lock] == [agent_read]
    assert len(lock) == (1 if connection.vendor == "postgresql" else 0)
    assert fresh(ada).status.name == "Break"


def test_an_agents_open_legs_are_read_once_under_its_lock(center, ada, basic_queue):
    contact = call(center, basic_queue)
    services.accept_contact(fresh(ada), str(contact.contact_id))
    with CaptureQueriesContext(connection) as queries:
        services.put_agent_state(fresh(ada), state(center, "Break"))  # on a call: the next status
    assert len(legs_reads(queries)) == 1
    assert (fresh(ada).status.name, fresh(ada).next_status.name) == ("Available", "Break")
    (snapshot_contact,) = snapshots.snapshot_frame(ada.pk)["snapshot"]["contacts"]
    assert snapshot_contact["contactId"] == str(contact.contact_id)


def test_legs_opened_after_the_agent_was_read_are_found_under_the_instance_lock(center, ada, basic_queue):
    (read,) = core.AGENT_AND_SETTINGS(ada.pk)
    assert not read.has_open_legs
    call(center, basic_queue)  # routed to ada: now she has one
    (read,) = core.AGENT_AND_SETTINGS(ada.pk)
    assert read.has_open_legs
    with core.engine_lock(center) as changes:  # the instance lock: legs are always read
        assert len(changes.open_legs(changes.agent(ada.pk))) == 1


def test_an_instances_first_change_under_one_agents_lock_creates_its_settings(center, make_agent):
    from ccphost.engine.models import EngineEvent, InstanceSettings

    ada = make_agent("ada", available=False)
    assert not EngineEvent.objects.filter(instance=center).exists()
    InstanceSettings.objects.filter(instance=center).delete()  # as before the instance's first change
    services.put_agent_state(ada, state(center, "Break"))
    assert fresh(ada).status.name == "Break"
    assert InstanceSettings.objects.get(instance=center).last_event_sequence == 1


def test_another_thread_prepares_its_own_plan(make_agent):
    ada, bob = make_agent("ada"), make_agent("bob")
    prepared = PreparedQuery(lambda pk: Agent.objects.select_related("user").filter(pk=pk))
    assert prepared(ada.pk)[0].user.username == "ada"
    seen = []

    def other() -> None:
        try:
            seen.append(prepared(bob.pk)[0].user.username)
        finally:
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == ["bob"]


def test_a_shape_whose_parameters_are_not_its_arguments_is_refused(center):
    reordered = PreparedQuery(lambda name, pk: Queue.objects.filter(instance_id=pk, name=name))
    with pytest.raises(ValueError, match="not its arguments"), transaction.atomic():
        reordered("BasicQueue", center.pk)


def test_a_prepared_update_writes_every_field_as_save_would(center, make_agent):
    ada = make_agent("ada")
    ada.state_name, ada.extension, ada.idle_since = "Break", "+15555550100", None
    ada.last_event_snapshot = {"State": {"Name": "Break"}, "Contacts": []}
    ada.snapshot_at, ada.snapshot_version = ada.state_since, ada.snapshot_version + 7
    PreparedUpdate(Agent)(ada)
    assert field_values(fresh(ada)) == field_values(ada)


def test_a_prepared_update_of_some_fields_writes_those_alone(center, make_agent):
    ada = make_agent("ada")
    ada.state_name, ada.last_event_snapshot = "Lunch", {"EventType": "HEART_BEAT"}
    PreparedUpdate(Agent, ["last_event_snapshot"])(ada)
    assert (fresh(ada).state_name, fresh(ada).last_event_snapshot) == ("Available", {"EventType": "HEART_BEAT"})
    with pytest.raises(ValueError, match="unknown fields of Agent"):
        PreparedUpdate(Agent, ["last_event_snapshot", "mood"])


@contextmanager
def agent_updates() -> Iterator[list[list[str]]]:
    """The columns each UPDATE of an agent row sets, as run."""
    updates: list[list[str]] = []

    def record(execute, sql, params, many, context):
        if sql.startswith('UPDATE "engine_agent"'):
            updates.append(sorted(re.findall(r'"(\w+)" = %s', sql.split(" WHERE ")[0])))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield updates


def test_a_row_read_by_a_prepared_query_is_written_where_it_changed(center, make_agent):
    ada = make_agent("ada")
    (read,) = core.AGENT(ada.pk)
    read.state_name, read.snapshot_version = "Break", read.snapshot_version + 1
    read.permissions.append("Extra")  # a JSON field changed in place is written too
    with agent_updates() as updates:
        core.SAVE_AGENT(read)
    assert updates == [
        [
            "dialable_countries",
            "last_event_snapshot",
            "permissions",
            "snapshot_version",
            "state_name",
        ]
    ]
    assert field_values(fresh(ada)) == field_values(read)


def test_a_second_write_of_a_row_writes_what_changed_since_the_first(center, make_agent):
    ada = make_agent("ada")
    (read,) = core.AGENT(ada.pk)
    read.state_name = "Break"
    core.SAVE_AGENT(read)
    read.state_name = "Available"  # back to what was read, but no longer what is stored
    read.snapshot_version += 1
    core.SAVE_AGENT(read)
    assert (fresh(ada).state_name, fresh(ada).snapshot_version) == ("Available", read.snapshot_version)


def test_a_column_changed_by_another_writer_is_left_alone_when_unchanged_here(center, make_agent):
    ada = make_agent("ada")
    (read,) = core.AGENT(ada.pk)
    Agent.objects.filter(pk=ada.pk).update(extension="+15555550199")  # not this change's column
    read.state_name = "Break"
    core.SAVE_AGENT(read)
    assert (fresh(ada).extension, fresh(ada).state_name) == ("+15555550199", "Break")


def test_a_row_not_read_by_a_prepared_query_is_written_whole(center, make_agent):
    ada = make_agent("ada")
    copy = Agent.objects.get(pk=ada.pk)
    Agent.objects.filter(pk=ada.pk).update(extension="+15555550199")
    with agent_updates() as updates:
        core.SAVE_AGENT(copy)
    assert len(updates) == 1 and "extension" in updates[0]
    assert fresh(ada).extension == ""


@contextmanager
def cyclic_garbage() -> Iterator[list]:
    """What the block leaves for the cycle collector: objects in reference cycles only."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list = []
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


def test_an_agents_change_leaves_no_instance_for_the_cycle_collector(center, ada):
    """Read together, an instance and its settings row refer to each other; a change lets go
    of the cycle when it ends (core.let_go_of_instance), so its rows are freed at once
    instead of by the collector, whose young collections they made more frequent."""
    services.put_agent_state(fresh(ada), state(center, "Break"))  # warm: caches filled
    with cyclic_garbage() as garbage:
        for name in ("Lunch", "Break", "Lunch"):
            services.put_agent_state(fresh(ada), state(center, name))
    kinds = {type(o).__name__ for o in garbage}
    assert not kinds & {"Instance", "InstanceSettings", "Agent"}, kinds


def test_a_ccp_request_leaves_no_instance_for_the_cycle_collector(center, ada):
    """The request's agent is read with its instance's settings (consumers.REQUEST_AGENT):
    the same cycle, let go of once the request is answered (core.let_go_of_settings)."""
    from ccphost.ccp.consumers import run_api_request

    def put(name: str) -> None:
        answer = run_api_request(ada.pk, "putAgentState", {"state": {"name": name, "type": "not_routable"}})
        assert "err" not in (answer or {}), answer

    put("Break")  # warm: caches filled
    with cyclic_garbage() as garbage:
        for name in ("Lunch", "Break", "Lunch"):
            put(name)
    kinds = {type(o).__name__ for o in garbage}
    assert not kinds & {"Instance", "InstanceSettings", "Agent"}, kinds
