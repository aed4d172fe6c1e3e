"""The event log: agent events shaped like Amazon Connect agent event streams and contact
events shaped like Amazon Connect contact events, numbered per instance."""

import uuid
from datetime import datetime
from functools import partial
from typing import Any

from ccphost.engine.core import Changes
from ccphost.engine.models import Agent, Connection, Contact, EngineEvent
from ccphost.instances.models import Instance

ACCOUNT_ID = "000000000000"
AGENT_EVENT_VERSION = "2017-10-01"


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_event(
    changes: Changes,
    stream: str,
    event_type: str,
    payload: dict[str, Any],
    event_id: uuid.UUID | None = None,
    **targets: Any,
) -> EngineEvent:
    """An event of this change: numbered and written when the change ends, just before its
    commit (core.write_events), in the order recorded. ``event_id``: the payload's EventId
    as a UUID, when it has one (else read from the payload, or new)."""
    event = EngineEvent(
        instance=changes.instance,
        stream=stream,
        event_type=event_type,
        event_id=event_id or payload.get("EventId") or uuid.uuid4(),
        payload=payload,
        created_at=changes.now,
        **targets,
    )
    changes.events.append(event)
    return event


def share_instance(instance: Instance, *objects: Any) -> None:
    """Rows of ``instance`` get its loaded copy, so their ARNs cost no query."""
    for obj in objects:
        if obj is not None and obj.instance_id == instance.pk:
            obj.instance = instance


def agent_contacts_for_event(agent: Agent, legs: list[Connection]) -> list[dict[str, Any]]:
    """``legs``: the agent's open legs with their contacts and queues (routing.open_legs)."""
    records = []
    for connection in legs:
        contact = connection.contact
        records.append(
            {
                "Channel": "VOICE",
                "ContactId": str(contact.contact_id),
                "InitialContactId": str(contact.initial_contact_uuid),
                "InitiationMethod": contact.initiation_method.upper(),
                "State": agent_view_state(contact, connection).upper(),
                "StateStartTimestamp": iso(max(contact.state_since, connection.state_since)),
                "ConnectedToAgentTimestamp": iso(contact.connected_to_agent_at),
                "QueueTimestamp": iso(contact.queue_timestamp),
                "Queue": {"ARN": contact.queue.arn, "Name": contact.queue.name} if contact.queue else None,
            }
        )
    return records


def agent_view_state(contact: Contact, agent_connection: Connection) -> str:
    """The contact's state as this agent sees it: ended once the agent's leg is gone."""
    if agent_connection.state == Connection.State.DISCONNECTED:
        return "missed" if agent_connection.missed else "ended"
    return contact.state


def routing_profile_for_event(agent: Agent) -> dict[str, Any]:
    profile = agent.routing_profile
    inbound = list(profile.queues.all())
    share_instance(agent.instance, profile, profile.default_outbound_queue, *inbound)
    return {
        "ARN": profile.arn,
        "Name": profile.name,
        "DefaultOutboundQueue": {"ARN": profile.default_outbound_queue.arn},
        "InboundQueues": [{"ARN": q.arn, "Name": q.name} for q in inbound],
    }


def agent_event_snapshot(agent: Agent, changes: Changes, legs: list[Connection] | None = None) -> dict[str, Any]:
    """The agent as Amazon's agent event stream shows it; ``legs`` as routing.open_legs gives them."""
    from ccphost.engine.routing import open_legs

    profile = changes.cached(("event_profile", agent.routing_profile_id), partial(routing_profile_for_event, agent))
    share_instance(agent.instance, agent.status, agent.next_status)
    return {
        "AgentStatus": {"ARN": agent.status.arn, "Name": agent.status.name, "StartTimestamp": iso(agent.status_since)},
        "State": {"Type": agent.state_type, "Name": agent.state_name, "StartTimestamp": iso(agent.state_since)},
        "NextAgentStatus": {"ARN": agent.next_status.arn, "Name": agent.next_status.name}
        if agent.next_status
        else None,
        "Configuration": {
            "AgentHierarchyGroups": None,
            "FirstName": agent.user.first_name,
            "LastName": agent.user.last_name,
            "Username": agent.user.get_username(),
            "RoutingProfile": profile,
        },
        "Contacts": agent_contacts_for_event(agent, open_legs(agent) if legs is None else legs),
    }


def record_agent_event(
    changes: Changes,
    agent: Agent,
    event_type: str,
    current: dict[str, Any] | None = None,
    agent_arn: str | None = None,
) -> EngineEvent:
    """An agent event from ``current`` (default: the agent as the engine has it) and the
    agent's last recorded snapshot; ``agent_arn`` when it is not ccphost's (Amazon's)."""
    current = current if current is not None else agent_event_snapshot(agent, changes)
    event_id = uuid.uuid4()
    payload = {
        "AWSAccountId": ACCOUNT_ID,
        "AgentARN": agent_arn or agent.arn,
        "CurrentAgentSnapshot": current,
        "PreviousAgentSnapshot": agent.last_event_snapshot,
        "EventId": str(event_id),
        "EventTimestamp": iso(changes.now),
        "EventType": event_type,
        "InstanceARN": changes.instance.arn_prefix,
        "Version": AGENT_EVENT_VERSION,
    }
    agent.last_event_snapshot = current
    return record_event(changes, EngineEvent.Stream.AGENT, event_type, payload, event_id=event_id, agent=agent)


def record_agent_change(changes: Changes, agent: Agent, legs: list[Connection]) -> None:
    """A STATE_CHANGE event whenever what the agent event stream shows has changed."""
    current = agent_event_snapshot(agent, changes, legs)
    if current != agent.last_event_snapshot:
        record_agent_event(changes, agent, "STATE_CHANGE", current)


def record_contact_event(changes: Changes, contact: Contact, event_type: str, **detail: Any) -> EngineEvent:
    agent = contact.agent
    payload: dict[str, Any] = {
        "AWSAccountId": ACCOUNT_ID,
        "ContactId": str(contact.contact_id),
        "InitialContactId": str(contact.initial_contact_uuid),
        "PreviousContactId": str(contact.previous_contact.contact_id) if contact.previous_contact else None,
        "Channel": "VOICE",
        "InitiationMethod": contact.initiation_method.upper(),
        "InstanceArn": changes.instance.arn_prefix,
        "EventType": event_type,
        "EventTimestamp": iso(changes.now),
        "InitiationTimestamp": iso(contact.created_at),
        "QueueInfo": {"QueueArn": contact.queue.arn, "EnqueueTimestamp": iso(contact.queue_timestamp)}
        if contact.queue
        else None,
        "AgentInfo": {"AgentArn": agent.arn, "ConnectedToAgentTimestamp": iso(contact.connected_to_agent_at)}
        if agent
        else None,
        "DisconnectTimestamp": iso(contact.ended_at),
        **detail,
    }
    return record_event(changes, EngineEvent.Stream.CONTACT, event_type, payload, contact=contact, agent=agent)
