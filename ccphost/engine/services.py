"""The agent's actions, one service each (the CCP API methods call them through engine.api).

Each runs in one engine transaction: it locks what it changes, checks its preconditions and
raises EngineError naming the rule broken (nothing changed), records events, and pushes the
agent's new snapshot on commit."""

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from ccphost.engine import dialplan
from ccphost.engine.core import (
    Changes,
    EngineError,
    engine_change,
    engine_transaction,
    invalid_parameter,
    invalid_state,
    not_found,
)
from ccphost.engine.events import record_contact_event
from ccphost.engine.lifecycle import (
    LIVE,
    agent_leaves,
    clear_agent_leg,
    connect_agent_leg,
    customer_connection,
    dial,
    drop_agent_leg,
    end_contact,
    enqueue,
    offer_contact,
)
from ccphost.engine.models import Agent, AgentState, Connection, Contact, Queue, QuickConnect
from ccphost.engine.routing import open_legs
from ccphost.instances.models import Instance

DIGITS = re.compile(r"^[0-9*#]{1,100}$")


@dataclass(frozen=True)
class Endpoint:
    """Where a call or transfer goes: a phone number, a queue, or an agent."""

    type: str
    phone_number: str = ""
    name: str = ""
    queue: Queue | None = None
    agent: Agent | None = None


def locked_contact(changes: Changes, agent: Agent, contact_id: str) -> tuple[Contact, Connection]:
    """The agent's own contact and leg; another agent's contact is not found (isolation)."""
    contact = (
        Contact.objects.select_for_update(of=("self",))
        .select_related("queue", "initial_contact")
        .filter(instance=changes.instance, contact_id=contact_id)
        .first()
    )
    leg = None
    if contact is not None:
        leg = contact.connections.filter(type=Connection.Type.AGENT, agent=agent, cleared_at__isnull=True).first()
    if contact is None or leg is None:
        raise not_found(f"The agent has no contact {contact_id}.")
    return contact, leg


def locked_connection(contact: Contact, connection_id: str) -> Connection:
    connection = contact.connections.select_for_update().filter(connection_id=connection_id).first()
    if connection is None:
        raise not_found(f"Contact {contact.contact_id} has no connection {connection_id}.")
    return connection


def require_talking(contact: Contact, leg: Connection, action: str) -> None:
    if leg.state not in (Connection.State.CONNECTED, Connection.State.HOLD) or contact.state == Contact.State.ENDED:
        raise invalid_state(f"{action} needs a connected contact; this one is {contact.state} for the agent.")


# Agent state and configuration


def put_agent_state(agent: Agent, state: AgentState) -> None:
    """Change the agent's status; while the agent has contacts it becomes the next state.

    A status that is not routable cannot route anything: it takes the agent's lock alone
    (core.engine_change), unless missed contacts are to be cleared."""

    def change(changes: Changes) -> None:
        locked = changes.agent(agent.pk)
        if state.instance_id != locked.instance_id or not state.enabled:
            raise not_found(f"No agent state {state.name!r} in this instance.")
        if locked.error_state == "MultipleCcpWindows":
            raise invalid_state("The CCP is open in another browser: close it there first (MultipleCcpWindows).")
        locked.error_state = ""
        legs = changes.open_legs(locked)
        if missed_legs := [leg for leg in legs if leg.missed]:
            changes.require_instance_lock("clearing missed contacts")
        for missed in missed_legs:
            clear_agent_leg(changes, missed)
        if any(not leg.missed for leg in legs):
            locked.next_status = None if state.pk == locked.status_id else state
        else:
            if state.pk != locked.status_id:
                locked.status, locked.status_since = state, changes.now
            locked.next_status = None

    routable = state.type == AgentState.Type.ROUTABLE
    engine_change(agent.instance, change, agent_pk=None if routable else agent.pk)


def update_agent_configuration(
    agent: Agent, *, softphone_enabled: bool, softphone_auto_accept: bool, extension: str, language: str
) -> None:
    extension = dialplan.normalize_number(extension) if extension else ""
    if not softphone_enabled and not dialplan.is_e164(extension):
        raise invalid_parameter("extension: with softphone off, give a desk phone number in E.164 (+15555550100).")
    if extension and not dialplan.is_e164(extension):
        raise invalid_parameter("extension: a desk phone number is in E.164 (+15555550100).")
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        agent.softphone_enabled = softphone_enabled
        agent.softphone_auto_accept = softphone_auto_accept
        agent.extension = extension
        agent.language = language


# Ringing contacts


def accept_contact(agent: Agent, contact_id: str) -> None:
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        if leg.state != Connection.State.CONNECTING or contact.initiation_method == "outbound":
            raise invalid_state(f"Only a ringing contact can be accepted; this one is {contact.state}.")
        connect_agent_leg(changes, contact, leg)


def reject_contact(agent: Agent, contact_id: str) -> None:
    """The contact goes back to its queue, for another agent."""
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        if leg.state != Connection.State.CONNECTING or contact.initiation_method == "outbound":
            raise invalid_state(f"Only a ringing contact can be rejected; this one is {contact.state}.")
        drop_agent_leg(changes, contact, leg, refused=True)
        record_contact_event(changes, contact, "REJECTED_BY_AGENT", RejectingAgentArn=agent.arn)


# Hanging up and after-call work


def hang_up(changes: Changes, agent: Agent, contact: Contact, leg: Connection) -> None:
    if leg.state not in LIVE:
        raise invalid_state("The contact has already ended for this agent: clear it instead.")
    if leg.state == Connection.State.CONNECTING and contact.initiation_method != "outbound":
        drop_agent_leg(changes, contact, leg, refused=True)
        record_contact_event(changes, contact, "REJECTED_BY_AGENT", RejectingAgentArn=agent.arn)
        return
    end_contact(changes, contact)


def destroy_contact(agent: Agent, contact_id: str) -> None:
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        hang_up(changes, agent, contact, leg)


def destroy_connection(agent: Agent, contact_id: str, connection_id: str) -> None:
    """Hang up one leg: the agent's own (the contact ends), the customer's (the contact ends),
    or a third party's (the others stay)."""
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        target = locked_connection(contact, connection_id)
        if target.pk == leg.pk or target.initial:
            hang_up(changes, agent, contact, leg)
            return
        if target.type == Connection.Type.AGENT:
            raise EngineError("AccessDeniedException", "An agent cannot hang up another agent's connection.", 403)
        if target.state not in LIVE:
            raise invalid_state(f"Connection {connection_id} is already {target.state}.")
        target.state, target.state_since = Connection.State.DISCONNECTED, changes.now
        target.save()


def clear_contact(agent: Agent, contact_id: str) -> None:
    """End after-call work (or dismiss a failed call): the contact leaves the agent's CCP."""
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        if leg.state != Connection.State.DISCONNECTED:
            raise invalid_state(f"Only an ended contact (after-call work) can be cleared; this one is {contact.state}.")
        clear_agent_leg(changes, leg)


def complete_contact(agent: Agent, contact_id: str) -> None:
    clear_contact(agent, contact_id)


# Calls


def check_dialable(agent: Agent, number: str) -> None:
    countries = dialplan.countries_of(number)
    if countries is not None and not countries & set(agent.dialable_countries):
        raise EngineError("BadEndpointException", f"{number} is not in the agent's dialable countries.", 400)


def create_outbound_contact(agent: Agent, endpoint: Endpoint, queue: Queue | None = None) -> Contact:
    if endpoint.type != "phone_number":
        raise EngineError(
            "BadEndpointException", "A call goes to a phone number; transfer to agents and queues instead.", 400
        )
    number = dialplan.normalize_number(endpoint.phone_number)
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        if "outboundCall" not in agent.permissions:
            raise EngineError("AccessDeniedException", "The agent may not place outbound calls.", 403)
        if agent.status.type == AgentState.Type.OFFLINE:
            raise invalid_state("An Offline agent cannot place calls: choose another state first.")
        if agent.error_state or open_legs(agent):
            raise invalid_state("The agent is on a contact: finish or clear it before placing a call.")
        check_dialable(agent, number)
        queue = queue or agent.routing_profile.default_outbound_queue
        if queue.instance_id != agent.instance_id:
            raise not_found("No such outbound queue in this instance.")
        return start_outbound_contact(changes, agent, number, endpoint.name, queue)


def start_outbound_contact(changes: Changes, agent: Agent, number: str, name: str, queue: Queue) -> Contact:
    contact = Contact.objects.create(
        instance=changes.instance,
        initiation_method=Contact.InitiationMethod.OUTBOUND,
        state=Contact.State.CONNECTING,
        state_since=changes.now,
        queue=queue,
        agent=agent,
        customer_number=number,
        created_at=changes.now,
    )
    Connection.objects.create(
        contact=contact,
        type=Connection.Type.AGENT,
        state=Connection.State.CONNECTED,
        state_since=changes.now,
        endpoint_type="agent",
        agent=agent,
        endpoint_name=agent.user.get_full_name() or agent.user.get_username(),
        created_at=changes.now,
    )
    customer = Connection.objects.create(
        contact=contact,
        type=Connection.Type.OUTBOUND,
        initial=True,
        state=Connection.State.INIT,
        state_since=changes.now,
        phone_number=number,
        endpoint_name=name or number,
        created_at=changes.now,
    )
    record_contact_event(changes, contact, "INITIATED")
    dial(changes, customer)
    return contact


def create_additional_connection(agent: Agent, contact_id: str, endpoint: Endpoint) -> None:
    """A number joins as a third party (the customer goes on hold); a queue or an agent
    takes the contact over (a blind transfer: the agent enters after-call work)."""
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        require_talking(contact, leg, "A transfer")
        if contact.state != Contact.State.CONNECTED:
            raise invalid_state("A transfer needs the customer connected.")
        if endpoint.type == "phone_number":
            add_third_party(changes, agent, contact, endpoint)
        else:
            transfer_contact(changes, contact, leg, endpoint)


def add_third_party(changes: Changes, agent: Agent, contact: Contact, endpoint: Endpoint) -> None:
    number = dialplan.normalize_number(endpoint.phone_number)
    if contact.connections.filter(type=Connection.Type.OUTBOUND, initial=False, state__in=LIVE).exists():
        raise invalid_state("This contact already has a third party: hang it up first.")
    check_dialable(agent, number)
    customer = customer_connection(contact)
    if customer.state == Connection.State.CONNECTED:
        customer.state, customer.state_since = Connection.State.HOLD, changes.now
        customer.save()
    third_party = Connection.objects.create(
        contact=contact,
        type=Connection.Type.OUTBOUND,
        state=Connection.State.INIT,
        state_since=changes.now,
        phone_number=number,
        endpoint_name=endpoint.name or number,
        created_at=changes.now,
    )
    dial(changes, third_party)


def transfer_contact(changes: Changes, contact: Contact, leg: Connection, endpoint: Endpoint) -> None:
    target_agent = endpoint.agent
    if target_agent is not None:
        target_agent = changes.agent(target_agent.pk)
        if target_agent.pk == leg.agent_id:
            raise invalid_state("An agent cannot transfer a contact to themselves.")
        if target_agent.state_type != AgentState.Type.ROUTABLE or open_legs(target_agent):
            raise invalid_state(f"Agent {target_agent.user.get_username()} is not available to take a transfer.")
    elif endpoint.queue is None:
        raise EngineError("BadEndpointException", "A transfer goes to a phone number, a queue or an agent.", 400)
    agent_leaves(changes, contact, leg)
    customer = customer_connection(contact)
    customer.state, customer.state_since = Connection.State.CONNECTED, changes.now
    customer.save()
    contact.initiation_method = Contact.InitiationMethod.TRANSFER
    contact.refused_by = []
    contact.queue = endpoint.queue or contact.queue
    contact.queue_timestamp = contact.waiting_since = None
    record_contact_event(changes, contact, "TRANSFERRED")
    if target_agent is not None:
        offer_contact(changes, contact, target_agent)
    else:
        enqueue(changes, contact)


# Legs of a connected contact


def toggle_active_connections(agent: Agent, contact_id: str, connection_id: str) -> None:
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        require_talking(contact, leg, "Toggling")
        locked_connection(contact, connection_id)
        others = list(contact.connections.exclude(type=Connection.Type.AGENT).filter(state__in=LIVE))
        held = [c for c in others if c.state == Connection.State.HOLD]
        talking = [c for c in others if c.state == Connection.State.CONNECTED]
        if len(others) != 2 or len(held) != 1 or len(talking) != 1:
            raise invalid_state("Toggling needs two parties, one on hold and one connected.")
        for connection, state in ((held[0], Connection.State.CONNECTED), (talking[0], Connection.State.HOLD)):
            connection.state, connection.state_since = state, changes.now
            connection.save()


def conference_connections(agent: Agent, contact_id: str) -> None:
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        require_talking(contact, leg, "A conference")
        others = list(contact.connections.exclude(type=Connection.Type.AGENT).filter(state__in=LIVE))
        if len(others) < 2 or any(c.state == Connection.State.CONNECTING for c in others):
            raise invalid_state("A conference needs two connected parties (customer and third party).")
        for connection in others:
            connection.state, connection.state_since = Connection.State.CONNECTED, changes.now
            connection.save()


def set_hold(agent: Agent, contact_id: str, connection_id: str, hold: bool) -> None:
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        require_talking(contact, leg, "Hold")
        target = locked_connection(contact, connection_id)
        expected = Connection.State.CONNECTED if hold else Connection.State.HOLD
        if target.type == Connection.Type.AGENT and target.pk != leg.pk:
            raise EngineError("AccessDeniedException", "An agent cannot hold another agent.", 403)
        if target.state != expected:
            raise invalid_state(f"Only a {expected} connection can be {'held' if hold else 'resumed'}.")
        target.state = Connection.State.HOLD if hold else Connection.State.CONNECTED
        target.state_since = changes.now
        target.save()


def hold_connection(agent: Agent, contact_id: str, connection_id: str) -> None:
    set_hold(agent, contact_id, connection_id, hold=True)


def resume_connection(agent: Agent, contact_id: str, connection_id: str) -> None:
    set_hold(agent, contact_id, connection_id, hold=False)


def set_mute(agent: Agent, contact_id: str, connection_id: str, mute: bool) -> None:
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        require_talking(contact, leg, "Muting")
        target = locked_connection(contact, connection_id)
        if target.state not in (Connection.State.CONNECTED, Connection.State.HOLD):
            raise invalid_state(f"Only a connected participant can be {'muted' if mute else 'unmuted'}.")
        target.mute = mute
        target.save()


def mute_participant(agent: Agent, contact_id: str, connection_id: str) -> None:
    set_mute(agent, contact_id, connection_id, mute=True)


def unmute_participant(agent: Agent, contact_id: str, connection_id: str) -> None:
    set_mute(agent, contact_id, connection_id, mute=False)


def send_digits(agent: Agent, contact_id: str, connection_id: str, digits: str) -> None:
    if not DIGITS.match(digits):
        raise invalid_parameter("digits: only 0-9, * and #, 1 to 100 of them.")
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, leg = locked_contact(changes, agent, contact_id)
        require_talking(contact, leg, "Sending digits")
        target = locked_connection(contact, connection_id)
        if target.state != Connection.State.CONNECTED:
            raise invalid_state("Digits go to a connected participant.")
        target.digits_sent += digits
        target.save()
        record_contact_event(changes, contact, "DIGITS_SENT", Digits=digits, ConnectionId=str(target.connection_id))


def notify_contact_issue(agent: Agent, contact_id: str, issue_code: str, description: str) -> None:
    with engine_transaction(agent.instance) as changes:
        agent = changes.agent(agent.pk)
        contact, _ = locked_contact(changes, agent, contact_id)
        issue = {"issueCode": issue_code, "description": description, "agent": agent.arn, "at": changes.now.isoformat()}
        contact.issues = [*contact.issues, issue]
        contact.save()
        record_contact_event(changes, contact, "ISSUE_REPORTED", Issue=issue)


# Reading


def list_endpoints(agent: Agent, queue_arns: list[str], start: int, max_results: int) -> tuple[list[Any], int | None]:
    """Quick connects available in the given queues (those limited to no queue are available
    in all), a page at a time."""
    quick_connects = (
        QuickConnect.objects.filter(instance=agent.instance)
        .exclude(agent=agent)  # not oneself
        .select_related("queue", "agent__user", "instance")
    )
    if queue_arns:
        queue_ids = [arn.rsplit("/", 1)[-1] for arn in queue_arns]
        quick_connects = quick_connects.filter(
            Q(available_in__queue_id__in=queue_ids) | Q(available_in__isnull=True)
        ).distinct()
    page = list(quick_connects.order_by("name", "pk")[start : start + max_results + 1])
    next_start = start + max_results if len(page) > max_results else None
    return page[:max_results], next_start


# Administration


def configuration_changed(instance: Instance, agents: list[Agent] | None = None) -> None:
    """After an administrator changed states, queues, profiles or agents: every agent concerned
    gets a new configuration pushed, and routing runs again (a queue may now be served)."""
    with engine_transaction(instance) as changes:
        targets = agents if agents is not None else list(Agent.objects.filter(instance=instance))
        for agent in targets:
            changes.agent(agent.pk)
