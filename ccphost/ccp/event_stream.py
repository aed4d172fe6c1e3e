"""Page subscriptions to an instance's event log: who may see which events, the short-lived
tokens an agent's CCP hands to the CRM page around it, and the live relay.

Events are numbered per instance (``EngineEvent.sequence``). The relay only pokes
subscribers with the new sequence number; each subscriber then reads what it may see after
the last number it sent, from the database. So a subscriber receives every event once, in
order, even when workers commit in one order and deliver in another, and a page that
reconnects with ``after=<seq>`` gets exactly what it missed.
"""

import uuid
from typing import Any

from django.core import signing

from ccphost.engine.models import Agent, Contact, EngineEvent
from ccphost.layers import group_send_soon, reaches_channel_layer

TOKEN_SALT = "ccphost.events-token"  # noqa: S105 (a signing namespace, not a secret)
TOKEN_MAX_AGE_SECONDS = 300
PAGE_SIZE = 200
WATCH_SECONDS = 1.0
SUPERVISE_PERMISSION = "engine.view_engineevent"


def instance_group(instance_id: int) -> str:
    return f"events.{instance_id}"


def agent_group(instance_id: int, agent_id: int) -> str:
    return f"events.{instance_id}.agent.{agent_id}"


def make_events_token(agent: Agent) -> str:
    """A token that lets a page on an approved origin subscribe as ``agent`` for a while."""
    return signing.dumps({"agent": agent.pk, "instance": agent.instance_id}, salt=TOKEN_SALT, compress=True)


def agent_from_token(token: str, alias: str) -> Agent | None:
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("agent"), int):
        return None
    return Agent.objects.select_related("instance").filter(pk=data["agent"], instance__alias=alias).first()


def visible_events(instance_id: int, agent_id: int | None, after: int, limit: int = PAGE_SIZE) -> list[EngineEvent]:
    """Events after ``after`` that the subscriber may see: an agent's own, or all for staff."""
    events = EngineEvent.objects.filter(instance_id=instance_id, sequence__gt=after)
    if agent_id is not None:
        events = events.filter(agent_id=agent_id)
    return list(events.select_related("contact").order_by("sequence")[:limit])


def latest_visible_sequence(instance_id: int, agent_id: int | None) -> int:
    events = EngineEvent.objects.filter(instance_id=instance_id)
    if agent_id is not None:
        events = events.filter(agent_id=agent_id)
    return events.order_by("-sequence").values_list("sequence", flat=True).first() or 0


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def envelope(event: EngineEvent) -> dict[str, Any]:
    """What a page receives: the Amazon-shaped record plus the attributes of its contacts,
    which a screen-pop needs before the agent accepts and Amazon's records leave out."""
    contact_ids = {c["ContactId"] for c in event.payload.get("CurrentAgentSnapshot", {}).get("Contacts") or []}
    if event.contact is not None:
        contact_ids.add(str(event.contact.contact_id))
    known = [contact_id for contact_id in contact_ids if is_uuid(contact_id)]  # forwarded ids may be anything
    attributes = {
        str(contact.contact_id): contact.attributes for contact in Contact.objects.filter(contact_id__in=known)
    }
    return {
        "type": "event",
        "seq": event.sequence,
        "stream": event.stream,
        "eventType": event.event_type,
        "eventId": str(event.event_id),
        "record": event.payload,
        "attributes": attributes,
    }


def publish_event(event: EngineEvent) -> None:
    """Poke the subscribers that may see ``event`` (call after commit)."""
    if not reaches_channel_layer():
        return  # the subscribers' watchers read it from the database
    message = {"type": "events.poke", "seq": event.sequence}
    group_send_soon(instance_group(event.instance_id), message)
    if event.agent_id is not None:
        group_send_soon(agent_group(event.instance_id, event.agent_id), message)
