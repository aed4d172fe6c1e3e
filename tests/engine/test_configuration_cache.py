"""The per-process configuration cache (engine.configuration): every save or delete of an
agent state, queue, routing profile, profile queue, webhook endpoint or the instance gives
the instance a new stamp, so the next snapshot, agent event and webhook see the change."""

import pytest

from ccphost.engine import seed, services, snapshots
from ccphost.engine.models import InstanceSettings, Queue, RoutingProfile, RoutingProfileQueue
from integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.engine.conftest import fresh, state

pytestmark = pytest.mark.django_db


def stamp(instance):
    return InstanceSettings.objects.get(instance=instance).config_stamp


def configuration(agent):
    return snapshots.snapshot_frame(agent.pk)["configuration"]


def test_renaming_an_agent_state_shows_in_the_next_snapshot(center, ada):
    assert "Coffee" not in [s["name"] for s in configuration(ada)["agentStates"]]
    lunch = state(center, "Lunch")
    lunch.name = "Coffee"
    lunch.save()
    services.put_agent_state(fresh(ada), state(center, "Break"))
    assert "Coffee" in [s["name"] for s in configuration(ada)["agentStates"]]
    assert "Lunch" not in [s["name"] for s in configuration(ada)["agentStates"]]


def test_a_disabled_state_leaves_the_configuration(center, ada):
    lunch = state(center, "Lunch")
    lunch.enabled = False
    lunch.save()
    assert "Lunch" not in [s["name"] for s in configuration(ada)["agentStates"]]


def test_a_queue_added_to_the_profile_shows_in_configuration_and_agent_events(center, ada):
    services.put_agent_state(fresh(ada), state(center, "Break"))  # caches both
    sales = Queue.objects.create(instance=center, name="Sales")
    RoutingProfileQueue.objects.create(routing_profile=ada.routing_profile, queue=sales, priority=2)
    assert "Sales" in [q["name"] for q in configuration(ada)["routingProfile"]["queues"]]
    services.put_agent_state(fresh(ada), state(center, "Lunch"))
    event = center.engine_events.filter(event_type="STATE_CHANGE").latest("sequence")
    inbound = event.payload["CurrentAgentSnapshot"]["Configuration"]["RoutingProfile"]["InboundQueues"]
    assert "Sales" in [q["Name"] for q in inbound]


@pytest.mark.parametrize("change", ["state", "queue", "profile", "profile_queue", "instance", "endpoint", "delete"])
def test_every_configuration_row_gives_a_new_stamp(center, change):
    before = stamp(center)
    profile = RoutingProfile.objects.get(instance=center, name=seed.BASIC_PROFILE)
    if change == "state":
        state(center, "Break").save()
    elif change == "queue":
        Queue.objects.create(instance=center, name="Sales")
    elif change == "profile":
        profile.save()
    elif change == "profile_queue":
        profile.queue_entries.first().save()
    elif change == "instance":
        center.save()
    elif change == "endpoint":
        WebhookEndpoint.objects.create(instance=center, url="https://crm.example.com/hook")
    else:
        profile.queue_entries.first().delete()
    assert stamp(center) != before


def test_an_endpoint_added_later_gets_the_next_event(center, ada):
    services.put_agent_state(fresh(ada), state(center, "Break"))  # endpoints cached: none
    endpoint = WebhookEndpoint.objects.create(instance=center, url="https://crm.example.com/hook")
    services.put_agent_state(fresh(ada), state(center, "Lunch"))
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    endpoint.enabled = False
    endpoint.save()
    services.put_agent_state(fresh(ada), state(center, "Break"))
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


def test_the_pushed_frame_is_the_frame_with_its_configuration_from_the_cache(center, ada):
    """snapshots.frame_message (the engine's push) sends what agent_frame describes."""
    import json

    from ccphost.engine.core import loaded_settings

    agent = fresh(ada)
    settings = loaded_settings(agent.instance)
    for _ in range(2):  # cold and warm cache
        pushed = json.loads(snapshots.frame_message(agent, [], settings)["text"])
        described = snapshots.agent_frame(agent, [], settings)
        for frame in (pushed, described):
            frame["snapshot"].pop("snapshotTimestamp")
        assert pushed == described
        assert list(pushed["configuration"]) == list(described["configuration"])


def test_a_renamed_status_shows_in_the_next_change_under_the_agents_lock(center, ada):
    """A change under one agent's lock takes the agent's states from the cache: renaming
    the state the agent is in shows in its next snapshot and agent event."""
    services.put_agent_state(fresh(ada), state(center, "Break"))
    services.put_agent_state(fresh(ada), state(center, "Break"))  # the states cached, read from the cache
    brk = state(center, "Break")
    brk.name = "Pause"
    brk.save()
    services.put_agent_state(fresh(ada), brk)  # the same state: the agent's status is not set anew
    assert snapshots.snapshot_frame(ada.pk)["snapshot"]["agentAvailabilityState"]["state"] == "Pause"
    event = center.engine_events.filter(event_type="STATE_CHANGE").latest("sequence")
    assert event.payload["PreviousAgentSnapshot"]["AgentStatus"]["Name"] == "Break"  # as recorded then
    assert event.payload["CurrentAgentSnapshot"]["AgentStatus"]["Name"] == "Pause"
