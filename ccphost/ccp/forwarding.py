"""Events of Amazon-hosted CCPs: ccphost's agent page forwards what Amazon Connect Streams sees
(each ``agent::update``: ``{snapshot, configuration}``) over the agent's events socket; this
module turns successive snapshots into agent and contact event records, in the same formats
and through the same log (sequence numbers, page subscribers, webhooks, Kinesis) as the
events of hosted instances.

The records are only as trustworthy as the agent's browser that forwarded them: an agent can
only ever write events of their own agent."""

from typing import Any

from ccphost.engine.core import SAVE_EVENT_SNAPSHOT, Changes, engine_lock
from ccphost.engine.events import ACCOUNT_ID, iso, record_agent_event, record_event
from ccphost.engine.models import Agent, EngineEvent
from ccphost.instances.models import Instance

MAX_CONTACTS = 20
MAX_TEXT = 200
CONTACT_STATES = {
    *("init", "incoming", "pending", "connecting", "connected"),
    *("missed", "error", "ended", "rejected", "paused"),
}
AGENT_STATE_TYPES = {"init", "routable", "not_routable", "offline", "system", "error"}
ENDED_EVENTS = {"missed": "MISSED_BY_AGENT", "rejected": "REJECTED_BY_AGENT"}
OVER = {"missed", "rejected", "error", "ended"}


class ForwardError(ValueError):
    """The forwarded data is not a Streams agent snapshot; the message says what is wrong."""


def text(value: Any, where: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise ForwardError(f"{where} must be a string of 1 to {MAX_TEXT} characters.")
    return value


def mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ForwardError(f"{where} must be an object.")
    return value


def loose(value: Any) -> dict[str, Any]:
    """An optional part of the snapshot: the object, or empty."""
    return value if isinstance(value, dict) else {}


def optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_TEXT else None


def contact_record(contact: Any, index: int) -> dict[str, Any]:
    where = f"snapshot.contacts[{index}]"
    contact = mapping(contact, where)
    state = mapping(contact.get("state"), f"{where}.state")
    state_type = text(state.get("type"), f"{where}.state.type")
    if state_type not in CONTACT_STATES:
        raise ForwardError(f"{where}.state.type must be one of {', '.join(sorted(CONTACT_STATES))}.")
    contact_type = text(contact.get("type"), f"{where}.type") or "voice"
    queue = loose(contact.get("queue"))
    contact_id = text(contact.get("contactId"), f"{where}.contactId")
    return {
        "Channel": "VOICE" if contact_type in ("voice", "queue_callback") else contact_type.upper(),
        "ContactId": contact_id,
        "InitialContactId": optional_text(contact.get("initialContactId")) or contact_id,
        "InitiationMethod": (optional_text(contact.get("initiationMethod")) or "inbound").upper(),
        "State": state_type.upper(),
        "StateStartTimestamp": optional_text(state.get("timestamp")),
        "ConnectedToAgentTimestamp": None,
        "QueueTimestamp": optional_text(contact.get("queueTimestamp")),
        "Queue": {"ARN": optional_text(queue.get("queueARN")), "Name": optional_text(queue.get("name"))}
        if queue
        else None,
    }


def agent_event_snapshot(agent: Agent, data: Any) -> dict[str, Any]:
    """The Amazon agent event stream's ``CurrentAgentSnapshot`` of a Streams agent::update."""
    data = mapping(data, "agentData")
    snapshot = mapping(data.get("snapshot"), "snapshot")
    configuration = mapping(data.get("configuration"), "configuration")
    state = mapping(snapshot.get("state"), "snapshot.state")
    state_type = text(state.get("type"), "snapshot.state.type")
    if state_type not in AGENT_STATE_TYPES:
        raise ForwardError(f"snapshot.state.type must be one of {', '.join(sorted(AGENT_STATE_TYPES))}.")
    name = text(state.get("name"), "snapshot.state.name")
    contacts = snapshot.get("contacts")
    if not isinstance(contacts, list) or len(contacts) > MAX_CONTACTS:
        raise ForwardError(f"snapshot.contacts must be a list of at most {MAX_CONTACTS} contacts.")
    next_state = loose(snapshot.get("nextState"))
    profile = loose(configuration.get("routingProfile"))
    queues: list[Any] = profile["queues"] if isinstance(profile.get("queues"), list) else []
    outbound = loose(profile.get("defaultOutboundQueue"))
    started = optional_text(state.get("startTimestamp"))
    return {
        "AgentStatus": {"ARN": optional_text(state.get("agentStateARN")), "Name": name, "StartTimestamp": started},
        "State": {"Type": state_type, "Name": name, "StartTimestamp": started},
        "NextAgentStatus": {
            "ARN": optional_text(next_state.get("agentStateARN")),
            "Name": optional_text(next_state.get("name")),
        }
        if next_state
        else None,
        "Configuration": {
            "AgentHierarchyGroups": None,
            "FirstName": agent.user.first_name,
            "LastName": agent.user.last_name,
            "Username": optional_text(configuration.get("username")) or agent.user.get_username(),
            "RoutingProfile": {
                "ARN": optional_text(profile.get("routingProfileARN") or profile.get("routingProfileId")),
                "Name": optional_text(profile.get("name")),
                "DefaultOutboundQueue": {"ARN": optional_text(outbound.get("queueARN"))},
                "InboundQueues": [
                    {"ARN": optional_text(q.get("queueARN")), "Name": optional_text(q.get("name"))}
                    for q in queues[:50]
                    if isinstance(q, dict)
                ],
            },
        },
        "Contacts": [contact_record(contact, index) for index, contact in enumerate(contacts)],
    }


def contact_event_types(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Contact events for one contact between two agent snapshots (``None``: not in it)."""
    old = before["State"].lower() if before else None
    new = after["State"].lower() if after else None
    if old == new:
        return []
    types = []
    if before is None:
        types.append("INITIATED")
    if new == "connected":
        types.append("CONNECTED_TO_AGENT")
    if new in OVER or (new is None and old not in OVER):
        types.append(ENDED_EVENTS.get(new or "", "DISCONNECTED"))
    return types


def record_forwarded(agent_pk: int, data: Any) -> list[int]:
    """Record what changed since the agent's last forwarded snapshot; the new sequences."""
    agent = Agent.objects.select_related("user", "instance").get(pk=agent_pk)
    if agent.instance.kind != Instance.Kind.AMAZON_CONNECT:
        raise ForwardError("Only the agents of Amazon Connect instances forward Streams events.")
    current = agent_event_snapshot(agent, data)
    agent_arn = optional_text(mapping(data.get("configuration"), "configuration").get("agentARN")) or agent.arn
    # One agent, no routing; its events numbered as it ends, for the answer (core.engine_lock).
    with engine_lock(agent.instance, agent_pk=agent_pk, numbered=True) as changes:
        agent = changes.agent(agent_pk)
        previous = agent.last_event_snapshot or None
        if previous == current:
            return []
        recorded = []
        if previous is None or without_contacts(previous) != without_contacts(current):
            agent.last_event_snapshot = previous
            event_type = "LOGIN" if previous is None else "STATE_CHANGE"
            recorded.append(record_agent_event(changes, agent, event_type, current, agent_arn=agent_arn))
        before = {c["ContactId"]: c for c in (previous or {}).get("Contacts", [])}
        after = {c["ContactId"]: c for c in current["Contacts"]}
        for contact_id in [*after, *(c for c in before if c not in after)]:
            for event_type in contact_event_types(before.get(contact_id), after.get(contact_id)):
                contact = after.get(contact_id) or before[contact_id]
                recorded.append(record_contact(changes, agent, agent_arn, contact, event_type))
        agent.last_event_snapshot = current
        SAVE_EVENT_SNAPSHOT(agent)
    return [event.sequence for event in recorded]  # numbered as the change ends


def without_contacts(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in snapshot.items() if key != "Contacts"}


def record_contact(
    changes: Changes, agent: Agent, agent_arn: str, contact: dict[str, Any], event_type: str
) -> EngineEvent:
    queue = contact.get("Queue") or {}
    payload = {
        "AWSAccountId": ACCOUNT_ID,
        "ContactId": contact["ContactId"],
        "InitialContactId": contact["InitialContactId"],
        "PreviousContactId": None,
        "Channel": contact["Channel"],
        "InitiationMethod": contact["InitiationMethod"],
        "InstanceArn": changes.instance.arn_prefix,
        "EventType": event_type,
        "EventTimestamp": iso(changes.now),
        "QueueInfo": {"QueueArn": queue.get("ARN"), "EnqueueTimestamp": contact.get("QueueTimestamp")}
        if queue
        else None,
        "AgentInfo": {"AgentArn": agent_arn, "ConnectedToAgentTimestamp": None},
        "Source": "amazon-connect-streams",
    }
    return record_event(changes, EngineEvent.Stream.CONTACT, event_type, payload, agent=agent)
