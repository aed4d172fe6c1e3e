"""Indexes kept off the hot path: agent events (most of the log) carry no contact and are
not indexed by it, and agents are not indexed by status; lookups by contact and by
instance still use an index, and the rules that need a status's agents still hold."""

import pytest
from django.db import connection
from django.db.models import RestrictedError

from ccphost.engine.models import Agent, AgentState, EngineEvent
from tests.engine.conftest import fresh, state

pytestmark = pytest.mark.django_db


def plan(queryset) -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a small table: judge the index, not the cost
    return queryset.explain()


def test_a_lookup_by_contact_uses_the_partial_index():
    assert "engine_event_contact" in plan(EngineEvent.objects.filter(contact_id=5))


def test_setting_a_deleted_contacts_events_to_null_uses_it_too():
    # What Contact's on_delete=SET_NULL runs, with the contacts' pks.
    assert "engine_event_contact" in plan(EngineEvent.objects.filter(contact_id__in=[1, 2]))


def test_a_lookup_by_instance_uses_the_sequence_constraints_index():
    text = plan(EngineEvent.objects.filter(instance_id=1))
    assert "sqlite_autoindex_engine_engineevent_" in text or "unique_event_sequence" in text


def test_event_ids_are_not_indexed():
    """An event's id is a new uuid4: an index of them only cost each event a random page."""
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, EngineEvent._meta.db_table)
    assert [name for name, index in indexes.items() if "event_id" in index["columns"]] == []


def test_no_index_of_nulls_for_agent_events():
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, EngineEvent._meta.db_table)
    by_contact = [name for name, index in indexes.items() if index["index"] and index["columns"] == ["contact_id"]]
    by_instance = [name for name, index in indexes.items() if index["index"] and index["columns"] == ["instance_id"]]
    assert (by_contact, by_instance) == (["engine_event_contact"], [])


def test_a_status_in_use_cannot_be_deleted(center, ada):
    with pytest.raises(RestrictedError):
        AgentState.objects.filter(pk=ada.status_id).delete()


def test_deleting_an_agents_next_status_clears_it(center, ada):
    spare = AgentState.objects.create(instance=center, name="Training", type=AgentState.Type.NOT_ROUTABLE)
    Agent.objects.filter(pk=ada.pk).update(next_status=spare)
    spare.delete()
    assert fresh(ada).next_status_id is None
    assert fresh(ada).status_id == state(center, "Available").pk
