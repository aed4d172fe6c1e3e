"""Engine fixtures: a seeded instance, agents, and helpers to read state back."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from ccphost.engine import network, seed, services
from ccphost.engine.models import Agent, AgentState, Contact, Queue


@pytest.fixture
def center(instance):
    seed.seed_instance_defaults(instance)
    return instance


def make_user(django_user_model: Any, username: str) -> Any:
    return django_user_model.objects.create_user(username, f"{username}@example.com")  # no password: fast


@pytest.fixture
def make_agent(center, django_user_model):
    def make(username: str, available: bool = True, **fields: Any) -> Agent:
        agent = seed.make_agent(center, make_user(django_user_model, username), **fields)
        if available:
            services.put_agent_state(agent, state(center, "Available"))
        return fresh(agent)

    return make


@pytest.fixture
def ada(make_agent):
    return make_agent("ada")


@pytest.fixture
def basic_queue(center):
    return Queue.objects.get(instance=center, name=seed.BASIC_QUEUE)


def state(instance: Any, name: str) -> AgentState:
    return AgentState.objects.get(instance=instance, name=name)


def fresh(obj: Any) -> Any:
    return type(obj).objects.get(pk=obj.pk)


def call(instance: Any, queue: Queue, number: str = "+15555550123", **attributes: str) -> Contact:
    return network.start_inbound_contact(instance, queue, number, attributes)


def leg_of(contact: Contact, agent: Agent) -> Any:
    return contact.connections.get(type="agent", agent=agent, cleared_at__isnull=True)


def later(seconds: float) -> Any:
    return timezone.now() + timedelta(seconds=seconds)


def fingerprint(instance: Any) -> tuple[Any, ...]:
    """Everything an engine change could touch, to assert that a refused request changed nothing."""
    from ccphost.engine.models import Connection, EngineEvent, Timer

    return (
        list(Agent.objects.filter(instance=instance).order_by("pk").values()),
        list(Contact.objects.filter(instance=instance).order_by("pk").values()),
        list(Connection.objects.filter(contact__instance=instance).order_by("pk").values()),
        EngineEvent.objects.filter(instance=instance).count(),
        Timer.objects.filter(instance=instance).count(),
    )


def assert_refused(instance: Any, action: Any, error_type: str, *args: Any, **kwargs: Any) -> Any:
    from ccphost.engine.core import EngineError

    before = fingerprint(instance)
    with pytest.raises(EngineError) as refused:
        action(*args, **kwargs)
    assert refused.value.type == error_type, refused.value.message
    assert fingerprint(instance) == before
    return refused.value


@pytest.fixture
def concurrent_db(transactional_db: Any) -> None:
    """Threads need a database they can share: PostgreSQL, or SQLite in a file (an in-memory
    SQLite test database fails concurrent writers at once with 'table is locked')."""
    from django.db import connection

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("needs PostgreSQL (DATABASE_URL) or a file SQLite test database (DATABASES TEST NAME)")
