"""Defaults of a new contact center, and agents: used by `manage.py demo` and tests."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from ccphost.engine.core import engine_settings
from ccphost.engine.models import Agent, AgentState, Queue, QuickConnect, RoutingProfile, RoutingProfileQueue
from ccphost.instances.models import Instance

DEFAULT_STATES = [
    ("Available", AgentState.Type.ROUTABLE),
    ("Offline", AgentState.Type.OFFLINE),
    ("Break", AgentState.Type.NOT_ROUTABLE),
    ("Lunch", AgentState.Type.NOT_ROUTABLE),
]
BASIC_QUEUE = "BasicQueue"
BASIC_PROFILE = "Basic Routing Profile"
DEFAULT_QUICK_CONNECTS = [
    ("Supervisor desk", QuickConnect.Type.PHONE_NUMBER, "+15555550100"),
    ("Busy line", QuickConnect.Type.PHONE_NUMBER, "+15555550002"),
    ("Basic queue", QuickConnect.Type.QUEUE, ""),
]


@transaction.atomic
def seed_instance_defaults(instance: Instance) -> RoutingProfile:
    """Default agent states, BasicQueue, the Basic routing profile and a few quick connects
    (idempotent: existing ones are kept)."""
    engine_settings(instance)
    for position, (name, type_) in enumerate(DEFAULT_STATES):
        AgentState.objects.get_or_create(instance=instance, name=name, defaults={"type": type_, "position": position})
    queue, _ = Queue.objects.get_or_create(instance=instance, name=BASIC_QUEUE)
    profile, _ = RoutingProfile.objects.get_or_create(
        instance=instance, name=BASIC_PROFILE, defaults={"default_outbound_queue": queue}
    )
    RoutingProfileQueue.objects.get_or_create(routing_profile=profile, queue=queue, defaults={"priority": 1})
    for name, kind, number in DEFAULT_QUICK_CONNECTS:
        QuickConnect.objects.get_or_create(
            instance=instance,
            name=name,
            defaults={"type": kind, "phone_number": number, "queue": queue if kind == "queue" else None},
        )
    return profile


def offline_state(instance: Instance) -> AgentState:
    state = AgentState.objects.filter(instance=instance, type=AgentState.Type.OFFLINE).first()
    if state is None:
        state = AgentState.objects.create(instance=instance, name="Offline", type=AgentState.Type.OFFLINE)
    return state


@transaction.atomic
def make_agent(instance: Instance, user: Any, routing_profile: RoutingProfile | None = None, **fields: Any) -> Agent:
    """Make `user` an agent of `instance` (Offline, Basic routing profile unless given), with
    an agent quick connect so that others can transfer to them; an existing agent is
    returned unchanged."""
    existing = Agent.objects.filter(instance=instance, user=user).first()
    if existing is not None:
        return existing
    profile = routing_profile or RoutingProfile.objects.filter(instance=instance, name=BASIC_PROFILE).first()
    if profile is None:
        profile = seed_instance_defaults(instance)
    state = offline_state(instance)
    now = timezone.now()
    agent = Agent.objects.create(
        instance=instance,
        user=user,
        routing_profile=profile,
        status=state,
        status_since=now,
        state_type=state.type,
        state_name=state.name,
        state_since=now,
        **fields,
    )
    name = user.get_full_name() or user.get_username()
    QuickConnect.objects.create(instance=instance, name=f"Agent {name}", type=QuickConnect.Type.AGENT, agent=agent)
    return agent
