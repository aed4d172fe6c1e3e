"""Random sequences of simulator and agent actions keep the engine's invariants: one initial
connection per contact, at most one voice contact per agent, no contact lost (each is
waiting in a queue, with an agent, or ended), and none waiting while an agent is free."""

import contextlib
import itertools
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ccphost.engine import network, seed, services
from ccphost.engine.core import EngineError
from ccphost.engine.models import Agent, AgentState, Connection, Contact, Queue
from ccphost.engine.services import Endpoint
from ccphost.engine.timers import run_due_timers
from ccphost.instances.models import Instance

AGENTS = 3
NUMBERS = ["+15555550123", "+15555550002", "+15555550003", "+15555550004", "+15555550009"]
STATES = ["Available", "Break", "Offline"]
ACTIONS = ["accept", "reject", "destroy", "clear", "hold", "resume", "transfer", "hangup_third"]
serial = itertools.count()


class ContactCenter(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        n = next(serial)
        self.instance = Instance.objects.create(alias=f"prop-{n}", name="Property test")
        seed.seed_instance_defaults(self.instance)
        self.queue = Queue.objects.get(instance=self.instance, name=seed.BASIC_QUEUE)
        users = [get_user_model().objects.create_user(f"prop-{n}-agent{i}") for i in range(AGENTS)]
        self.agents = [seed.make_agent(self.instance, user).pk for user in users]
        self.clock = timedelta()

    def agent(self, index: int) -> Agent:
        return Agent.objects.select_related("instance", "user").get(pk=self.agents[index])

    def attempt(self, action, *args) -> None:
        with contextlib.suppress(EngineError):  # refused is fine; the invariants say it did no harm
            action(*args)

    def open_contact_ids(self) -> list[str]:
        contacts = Contact.objects.filter(instance=self.instance).exclude(state=Contact.State.ENDED)
        return [str(c) for c in contacts.order_by("pk").values_list("contact_id", flat=True)]

    @rule(number=st.sampled_from(["+15555550123", "+15555550177"]), callback=st.booleans())
    def customer_calls(self, number: str, callback: bool) -> None:
        start = network.start_queue_callback if callback else network.start_inbound_contact
        start(self.instance, self.queue, number, {"n": "1"})

    @rule(index=st.integers(0, AGENTS - 1), name=st.sampled_from(STATES))
    def agent_changes_state(self, index: int, name: str) -> None:
        state = AgentState.objects.get(instance=self.instance, name=name)
        self.attempt(services.put_agent_state, self.agent(index), state)

    @rule(index=st.integers(0, AGENTS - 1), action=st.sampled_from(ACTIONS), pick=st.integers(0, 5))
    def agent_acts_on_a_contact(self, index: int, action: str, pick: int) -> None:
        agent = self.agent(index)
        legs = list(Connection.objects.filter(agent=agent, cleared_at__isnull=True).select_related("contact"))
        if not legs:
            return
        contact = legs[0].contact
        contact_id = str(contact.contact_id)
        customer = contact.connections.get(initial=True)
        simple = {
            "accept": services.accept_contact,
            "reject": services.reject_contact,
            "destroy": services.destroy_contact,
            "clear": services.clear_contact,
        }
        if action in simple:
            self.attempt(simple[action], agent, contact_id)
        elif action in ("hold", "resume"):
            service = services.hold_connection if action == "hold" else services.resume_connection
            self.attempt(service, agent, contact_id, str(customer.connection_id))
        elif action == "transfer":
            endpoint = (
                Endpoint(type="queue", queue=self.queue)
                if pick % 2
                else Endpoint(type="phone_number", phone_number=NUMBERS[pick % len(NUMBERS)])
            )
            self.attempt(services.create_additional_connection, agent, contact_id, endpoint)
        else:
            third = contact.connections.filter(initial=False).exclude(type="agent").first()
            if third is not None:
                self.attempt(services.destroy_connection, agent, contact_id, str(third.connection_id))

    @rule(index=st.integers(0, AGENTS - 1), number=st.sampled_from(NUMBERS))
    def agent_dials(self, index: int, number: str) -> None:
        self.attempt(services.create_outbound_contact, self.agent(index), Endpoint("phone_number", number))

    @rule(pick=st.integers(0, 10))
    def customer_hangs_up(self, pick: int) -> None:
        open_ids = self.open_contact_ids()
        if open_ids:
            self.attempt(network.customer_hangs_up, self.instance, open_ids[pick % len(open_ids)])

    @rule(seconds=st.sampled_from([1, 5, 25, 90]))
    def time_passes(self, seconds: int) -> None:
        self.clock += timedelta(seconds=seconds)
        run_due_timers(timezone.now() + self.clock)

    @invariant()
    def one_initial_connection_per_contact(self) -> None:
        for contact in Contact.objects.filter(instance=self.instance):
            assert contact.connections.filter(initial=True).count() == 1

    @invariant()
    def at_most_one_voice_contact_per_agent(self) -> None:
        for pk in self.agents:
            legs = Connection.objects.filter(agent_id=pk, cleared_at__isnull=True)
            assert legs.count() <= 1
            live = legs.filter(state__in=Connection.LIVE_STATES)
            assert live.values("contact").distinct().count() <= 1

    @invariant()
    def two_agents_never_share_a_contact(self) -> None:
        for contact in Contact.objects.filter(instance=self.instance):
            live = contact.connections.filter(type="agent", state__in=Connection.LIVE_STATES)
            assert live.count() <= 1

    @invariant()
    def no_contact_is_lost(self) -> None:
        for contact in Contact.objects.filter(instance=self.instance):
            if contact.state == Contact.State.ENDED:
                assert contact.waiting_since is None
                assert not contact.connections.filter(state__in=Connection.LIVE_STATES).exists()
                continue
            if contact.waiting_since is not None:
                assert contact.state == Contact.State.INIT and contact.agent_id is None
                continue
            assert contact.agent_id is not None, f"{contact} is neither queued, with an agent, nor ended"
            assert contact.connections.filter(
                type="agent", agent_id=contact.agent_id, state__in=Connection.LIVE_STATES, cleared_at__isnull=True
            ).exists(), f"{contact}: its agent has no live leg"

    @invariant()
    def no_contact_waits_while_an_agent_is_free(self) -> None:
        # Every agent serves the one queue: a waiting contact means nobody could take it.
        waiting = Contact.objects.filter(instance=self.instance, waiting_since__isnull=False)
        for contact in waiting:
            for agent in Agent.objects.filter(pk__in=self.agents, state_type=AgentState.Type.ROUTABLE):
                if agent.pk in contact.refused_by or agent.connections.filter(cleared_at__isnull=True).exists():
                    continue
                raise AssertionError(f"{contact} waits while {agent} is free")


@pytest.mark.django_db
def test_random_scenarios_keep_the_invariants():
    run_state_machine_as_test(
        ContactCenter,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
