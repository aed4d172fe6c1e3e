"""engine.prepared.DbValues: the parameters it gives for a row are those Django's
``get_db_prep_save`` gives, for every field of the engine's models and any value, on the
database the suite runs on (SQLite, or PostgreSQL in the scale-out run)."""

import datetime
import uuid
import zoneinfo
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import F, Value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccphost.engine.core import EVENT_FIELDS, SAVE_AGENT
from ccphost.engine.models import Agent, EngineEvent
from ccphost.engine.prepared import DbValues, value_adapter

MODELS = [*apps.get_app_config("engine").get_models(), *apps.get_app_config("instances").get_models()]
FIELDS = [f for model in MODELS for f in model._meta.concrete_fields]
ZONES = [datetime.UTC, zoneinfo.ZoneInfo("Europe/Paris"), zoneinfo.ZoneInfo("America/Los_Angeles")]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
VALUES = st.one_of(
    st.none(),
    st.integers(-(2**31), 2**31 - 1),
    st.booleans(),
    st.text(max_size=20),
    st.uuids(),
    st.datetimes(
        min_value=datetime.datetime(1971, 1, 1),
        max_value=datetime.datetime(2100, 1, 1),
        timezones=st.sampled_from(ZONES),
    ),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), JSON, max_size=3),
)


def comparable(value: Any) -> Any:
    """A parameter as a comparable value: psycopg's wrappers (Jsonb, Int4, ...) by type and content."""
    if hasattr(value, "obj"):  # psycopg's Jsonb
        return (type(value), value.obj)
    return (type(value), value)


def django_way(field: Any, value: Any) -> Any:
    try:
        return comparable(field.get_db_prep_save(value, connection=connection))
    except Exception as error:  # the same error either way
        return (type(error), str(error))


def fast_way(field: Any, value: Any) -> Any:
    try:
        return comparable(value_adapter(field, connection)(value))
    except Exception as error:
        return (type(error), str(error))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # naive datetimes, as Django warns of them
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=VALUES)
def test_a_value_is_prepared_as_django_prepares_it(field, value):
    assert fast_way(field, value) == django_way(field, value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f"{f.model.__name__}.{f.name}")
def test_each_field_with_values_of_its_own_type(field):
    now = datetime.datetime.now(datetime.UTC)
    samples = [None, 0, 7, 2**40, "", "x", True, False, uuid.uuid4(), now, now.astimezone(ZONES[1])]
    samples += [now.replace(tzinfo=None), [], ["a"], {"k": [1, None]}, F("pk"), Value(3)]
    for value in samples:
        assert fast_way(field, value) == django_way(field, value), value


def test_shortcuts_cover_the_engine_hot_fields():
    """The plain types of the agent's and the event's columns take the shortcut."""
    hot = [*EVENT_FIELDS, *SAVE_AGENT.fields]
    assert [f.attname for f in hot if value_adapter(f, connection).__name__ == "slow"] == []
    assert len(hot) > 20


@pytest.mark.django_db
def test_rows_give_the_same_parameters(make_agent):
    agent = Agent.objects.get(pk=make_agent("ada").pk)
    fields_ = SAVE_AGENT.fields
    assert [comparable(v) for v in DbValues(fields_)(agent, connection)] == [
        comparable(f.get_db_prep_save(getattr(agent, f.attname), connection=connection)) for f in fields_
    ]
    event = EngineEvent(instance=agent.instance, stream="agent", event_type="X", payload={"a": 1}, agent=agent)
    event.created_at = datetime.datetime.now(datetime.UTC)
    assert [comparable(v) for v in DbValues(EVENT_FIELDS)(event, connection)] == [
        comparable(f.get_db_prep_save(getattr(event, f.attname), connection=connection)) for f in EVENT_FIELDS
    ]
