"""Routing: longest idle first, queue priority, waiting contacts, and no double assignment."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from ccphost.engine import services
from ccphost.engine.core import EngineError
from ccphost.engine.models import Agent, Connection, Contact, Queue, RoutingProfile, RoutingProfileQueue
from tests.engine.conftest import call, fresh, state


@pytest.mark.django_db
def test_contact_goes_to_the_longest_idle_agent(center, make_agent, basic_queue):
    ada, bob = make_agent("ada"), make_agent("bob")
    first = call(center, basic_queue)
    assert fresh(first).agent == ada
    services.accept_contact(ada, str(first.contact_id))
    services.destroy_contact(ada, str(first.contact_id))
    services.clear_contact(ada, str(first.contact_id))
    second = call(center, basic_queue)
    assert fresh(second).agent == bob  # bob has now been idle longer than ada


@pytest.mark.django_db
def test_agent_not_serving_the_queue_gets_nothing(center, make_agent):
    other_queue = Queue.objects.create(instance=center, name="Billing")
    make_agent("ada")
    contact = call(center, other_queue)
    assert fresh(contact).agent is None and fresh(contact).waiting_since is not None


@pytest.mark.django_db
def test_not_routable_agent_gets_nothing(center, make_agent, basic_queue):
    ada = make_agent("ada")
    services.put_agent_state(ada, state(center, "Break"))
    contact = call(center, basic_queue)
    assert fresh(contact).agent is None


@pytest.mark.django_db
def test_waiting_contacts_are_routed_oldest_first_when_an_agent_becomes_available(center, make_agent, basic_queue):
    ada = make_agent("ada", available=False)
    older, newer = call(center, basic_queue), call(center, basic_queue)
    assert fresh(older).agent is None and fresh(newer).agent is None
    services.put_agent_state(ada, state(center, "Available"))
    assert fresh(older).agent == ada
    assert fresh(newer).agent is None
    services.accept_contact(ada, str(older.contact_id))
    services.destroy_contact(ada, str(older.contact_id))
    services.clear_contact(ada, str(older.contact_id))
    assert fresh(newer).agent == ada


@pytest.mark.django_db
def test_queue_priority_comes_before_age(center, make_agent, basic_queue):
    vip = Queue.objects.create(instance=center, name="VIP")
    profile = RoutingProfile.objects.create(instance=center, name="Two queues", default_outbound_queue=basic_queue)
    RoutingProfileQueue.objects.create(routing_profile=profile, queue=basic_queue, priority=2)
    RoutingProfileQueue.objects.create(routing_profile=profile, queue=vip, priority=1)
    ada = make_agent("ada", available=False, routing_profile=profile)
    older_basic = call(center, basic_queue)
    newer_vip = call(center, vip)
    services.put_agent_state(ada, state(center, "Available"))
    assert fresh(newer_vip).agent == ada
    assert fresh(older_basic).agent is None


@pytest.mark.django_db
def test_an_agent_never_gets_two_voice_contacts(center, make_agent, basic_queue):
    ada = make_agent("ada")
    first, second = call(center, basic_queue), call(center, basic_queue)
    assert fresh(first).agent == ada and fresh(second).agent is None
    assert Connection.objects.filter(agent=ada, cleared_at__isnull=True).count() == 1


def run_together(*actions: Callable[[], Any]) -> list[Any]:
    """Run actions in threads released at the same moment; each result or exception."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(index: int, action: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = action()
        except Exception as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_concurrent_accepts_connect_once(concurrent_db, center, make_agent, basic_queue):
    ada = make_agent("ada")
    contact = call(center, basic_queue)
    contact_id = str(contact.contact_id)
    results = run_together(
        lambda: services.accept_contact(ada, contact_id), lambda: services.accept_contact(ada, contact_id)
    )
    refused = [r for r in results if isinstance(r, EngineError)]
    assert len(refused) == 1 and refused[0].type == "InvalidStateException", results
    assert results.count(None) == 1
    assert Connection.objects.filter(contact=contact, type="agent", state="connected").count() == 1


def test_two_agents_becoming_available_together_never_share_a_contact(concurrent_db, center, make_agent, basic_queue):
    agents = [make_agent(name, available=False) for name in ("ada", "bob", "cy")]
    contact = call(center, basic_queue)
    available = state(center, "Available")
    run_together(*[lambda a=a: services.put_agent_state(a, available) for a in agents])
    legs = Connection.objects.filter(contact=contact, type="agent")
    assert legs.count() == 1
    assert fresh(contact).agent in agents
    assert Agent.objects.filter(contacts__isnull=False).distinct().count() == 1


def test_concurrent_calls_each_reach_a_different_agent(concurrent_db, center, make_agent, basic_queue):
    agents = [make_agent(f"agent{i}") for i in range(3)]
    run_together(*[lambda: call(center, basic_queue) for _ in range(4)])
    contacts = list(Contact.objects.filter(instance=center))
    assert len(contacts) == 4
    assigned = [c.agent_id for c in contacts if c.agent_id]
    assert sorted(assigned) == sorted(a.pk for a in agents)
    assert sum(1 for c in contacts if c.waiting_since is not None) == 1
