"""The agent's snapshot and configuration in the shape of Amazon's CCP (ccp-wire-protocol.md),
and the socket frame that carries them. Timestamps are ISO-8601 strings in keys ending in
Timestamp/timestamp/timeStamp; the CCP page revives them into Date objects."""

import json
import logging
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from ccphost.engine import configuration
from ccphost.engine.core import Changes, loaded_settings
from ccphost.engine.events import agent_view_state, iso, share_instance
from ccphost.engine.models import Agent, AgentState, Connection, Contact, InstanceSettings, Queue, RoutingProfile
from ccphost.engine.routing import open_legs
from ccphost.instances.models import Instance
from ccphost.layers import group_send_soon, reaches_channel_layer

logger = logging.getLogger(__name__)

CONTACT_FEATURES = {
    "attachmentsEnabled": False,
    "messagingMarkdownEnabled": False,
    "multiPartyConferenceEnabled": False,
    "multiPartyChatEnabled": False,
}


def queue_ref(queue: Queue | None) -> dict[str, Any] | None:
    if queue is None:
        return None
    return {"queueARN": queue.arn, "queueId": queue.arn, "name": queue.name}


def state_ref(state: AgentState) -> dict[str, Any]:
    return {"agentStateARN": state.arn, "type": state.type, "name": state.name}


def endpoint_of(connection: Connection) -> dict[str, Any]:
    if connection.type == Connection.Type.AGENT and connection.agent is not None:
        agent = connection.agent
        return {
            "type": "agent",
            "endpointARN": agent.arn,
            "endpointId": agent.arn,
            "phoneNumber": None,
            "agentLogin": agent.user.get_username(),
            "name": connection.endpoint_name,
            "queue": None,
        }
    return {
        "type": connection.endpoint_type,
        "endpointARN": None,
        "endpointId": None,
        "phoneNumber": connection.phone_number,
        "agentLogin": None,
        "name": connection.endpoint_name or connection.phone_number,
        "queue": connection.queue.arn if connection.queue else None,
    }


def connection_snapshot(connection: Connection) -> dict[str, Any]:
    media = None
    if connection.type == Connection.Type.AGENT and connection.agent is not None:
        agent = connection.agent
        if agent.softphone_enabled:
            media = {"callType": "audio_only", "autoAccept": agent.softphone_auto_accept}
    return {
        "connectionId": str(connection.connection_id),
        "type": connection.type,
        "initial": connection.initial,
        "state": {"type": connection.state, "timestamp": iso(connection.state_since)},
        "mute": connection.mute,
        "forcedMute": False,
        "endpoint": endpoint_of(connection),
        "softphoneMediaInfo": media,
        "monitoringInfo": None,
    }


def contact_snapshot(contact: Contact, own_leg: Connection) -> dict[str, Any]:
    # The agent sees its own leg and the customer's and third parties', never other agents'.
    legs = [
        leg
        for leg in contact.connections.select_related("agent__user", "queue")
        if leg.pk == own_leg.pk or leg.type != Connection.Type.AGENT
    ]
    return {
        "contactId": str(contact.contact_id),
        "initialContactId": str(contact.initial_contact_uuid),
        "type": contact.type,
        "state": {
            "type": agent_view_state(contact, own_leg),
            "timestamp": iso(max(contact.state_since, own_leg.state_since)),
        },
        "queue": queue_ref(contact.queue),
        "queueTimestamp": iso(contact.queue_timestamp),
        "attributes": {key: {"name": key, "value": str(value)} for key, value in contact.attributes.items()},
        "initiationMethod": contact.initiation_method,
        "contactFeatures": dict(CONTACT_FEATURES),
        "connections": [connection_snapshot(leg) for leg in legs],
        "name": None,
        "description": None,
        "references": {},
    }


def agent_snapshot(agent: Agent, legs: list[Connection]) -> dict[str, Any]:
    """``legs``: the agent's open legs with their contacts and queues (routing.open_legs)."""
    system = agent.state_type in ("system", "error")
    return {
        "state": {
            "agentStateARN": None if system else agent.status.arn,
            "type": agent.state_type,
            "name": agent.state_name,
            "startTimestamp": iso(agent.state_since),
        },
        "nextState": state_ref(agent.next_status) if agent.next_status else None,
        "agentAvailabilityState": {"state": agent.status.name, "timeStamp": iso(agent.status_since)},
        "contacts": [contact_snapshot(leg.contact, leg) for leg in legs],
        "snapshotTimestamp": iso(timezone.now()),
    }


def agents_routing_profile_configuration(agent: Agent) -> dict[str, Any]:
    """Built only when the configuration cache has none: the agent's routing profile is
    then loaded if the agent was read without it (a change under one agent's lock)."""
    profile = agent.routing_profile
    share_instance(agent.instance, profile)
    return routing_profile_configuration(profile)


def routing_profile_configuration(profile: RoutingProfile) -> dict[str, Any]:
    queues = [entry.queue for entry in profile.queue_entries.select_related("queue")]
    share_instance(profile.instance, profile.default_outbound_queue, *queues)
    return {
        "name": profile.name,
        "routingProfileARN": profile.arn,
        "routingProfileId": profile.arn,
        "channelConcurrencyMap": {
            "VOICE": profile.voice_concurrency,
            "CHAT": profile.chat_concurrency,
            "TASK": profile.task_concurrency,
        },
        "defaultOutboundQueue": queue_ref(profile.default_outbound_queue),
        "queues": [queue_ref(queue) for queue in queues],
    }


def agent_states_configuration(instance: Instance) -> list[dict[str, Any]]:
    states = list(AgentState.objects.filter(instance=instance, enabled=True))
    share_instance(instance, *states)
    return [state_ref(state) for state in states]


def agents_own_configuration(agent: Agent) -> dict[str, Any]:
    """The agent's part of its configuration: what differs between agents of one profile."""
    user = agent.user
    return {
        "name": user.get_full_name() or user.get_username(),
        "username": user.get_username(),
        "agentARN": agent.arn,
        "softphoneEnabled": agent.softphone_enabled,
        "softphoneAutoAccept": agent.softphone_auto_accept,
        "extension": agent.extension,
        "agentPreferences": {"LANGUAGE": agent.language},
        "permissions": list(agent.permissions),
        "dialableCountries": list(agent.dialable_countries),
    }


def shared_configuration(agent: Agent, settings: InstanceSettings) -> dict[str, Any]:
    """The instance's part of the agent's configuration (its states and the agent's routing
    profile), from the configuration cache."""
    cache = partial(configuration.cached, settings)
    profile_key = ("routing_profile", agent.routing_profile_id)
    return {
        "agentStates": cache("agent_states", partial(agent_states_configuration, agent.instance)),
        "routingProfile": cache(profile_key, partial(agents_routing_profile_configuration, agent)),
    }


def agent_configuration(agent: Agent, settings: InstanceSettings) -> dict[str, Any]:
    """The agent's configuration; the instance's parts come from the configuration cache."""
    return agents_own_configuration(agent) | shared_configuration(agent, settings)


def configuration_json(agent: Agent, settings: InstanceSettings) -> str:
    """``json.dumps(agent_configuration(agent, settings))``, with the instance's part (most
    of it: about 1.9 of 2.3 kB with the seed's states and profile) serialized once per
    configuration stamp and profile instead of at every change."""
    shared = configuration.cached(
        settings,
        ("shared_configuration_json", agent.routing_profile_id),
        lambda: json.dumps(shared_configuration(agent, settings)),
    )
    return f"{json.dumps(agents_own_configuration(agent))[:-1]}, {shared[1:]}"


def load_agent(pk: int) -> Agent:
    agent = Agent.objects.select_related(
        "user", "instance__engine_settings", "status", "next_status", "routing_profile__default_outbound_queue"
    ).get(pk=pk)
    share_instance(agent.instance, agent.status, agent.next_status, agent.routing_profile)
    return agent


def frame_without_configuration(agent: Agent, legs: list[Connection]) -> dict[str, Any]:
    return {"type": "snapshot", "version": agent.snapshot_version, "snapshot": agent_snapshot(agent, legs)}


def agent_frame(agent: Agent, legs: list[Connection], settings: InstanceSettings) -> dict[str, Any]:
    return frame_without_configuration(agent, legs) | {"configuration": agent_configuration(agent, settings)}


def snapshot_frame(agent_pk: int) -> dict[str, Any]:
    """The agent's latest snapshot frame, read outside any engine transaction."""
    agent = load_agent(agent_pk)
    return agent_frame(agent, open_legs(agent), loaded_settings(agent.instance))


def snapshot_message(frame: dict[str, Any]) -> dict[str, Any]:
    """The channel-layer message carrying ``frame`` to an agent's sockets: its version, and
    its JSON text, serialized once for every socket of the agent (and cheap for a layer to
    copy or pack, unlike the nested frame)."""
    return message_of(frame["version"], json.dumps(frame))


def message_of(version: int, text: str) -> dict[str, Any]:
    return {"type": "ccp.snapshot", "version": version, "text": text}


def frame_message(agent: Agent, legs: list[Connection], settings: InstanceSettings) -> dict[str, Any]:
    """``snapshot_message(agent_frame(agent, legs, settings))``, the configuration's JSON
    put together from cached parts (configuration_json): at every change on the engine's
    thread, 13 of its 15 µs went to serializing the configuration, which seldom changes."""
    frame = json.dumps(frame_without_configuration(agent, legs))
    return message_of(agent.snapshot_version, f'{frame[:-1]}, "configuration": {configuration_json(agent, settings)}}}')


def push_on_commit(changes: Changes, agent: Agent, legs: list[Connection]) -> None:
    """Once ``changes`` commit, send the agent's new snapshot, built now from what the
    transaction holds, to every socket of that agent (group agent.<pk>)."""
    if not reaches_channel_layer():
        return  # the CCP sockets' version watcher delivers it
    message = frame_message(agent, legs, changes.settings)
    transaction.on_commit(partial(send_snapshot, agent.pk, message))


def send_snapshot(agent_pk: int, message: dict[str, Any]) -> None:
    try:
        group_send_soon(f"agent.{agent_pk}", message)
    except Exception:
        # A lost push is harmless: snapshots are full and versioned, and sockets resync.
        logger.exception("Could not push the snapshot of agent %s", agent_pk)
