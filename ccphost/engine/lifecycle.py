"""Steps of a contact's life shared by services, routing, timers and the simulated network.
Each runs inside an engine transaction (a `Changes`) and never commits on its own."""

from ccphost.engine import dialplan
from ccphost.engine.core import Changes
from ccphost.engine.events import record_contact_event
from ccphost.engine.models import Agent, Connection, Contact, Timer

LIVE = Connection.LIVE_STATES
CUSTOMER_ERROR_STATES = {
    "BadAddressCustomer",
    "FailedConnectCustomer",
    "LineEngagedCustomer",
    "MissedCallCustomer",
}


def set_state(obj: Contact | Connection, state: str, changes: Changes) -> None:
    if obj.state != state:
        obj.state = state
        obj.state_since = changes.now


def agent_connection(contact: Contact, agent: Agent) -> Connection | None:
    return contact.connections.filter(type=Connection.Type.AGENT, agent=agent, cleared_at__isnull=True).first()


def customer_connection(contact: Contact) -> Connection:
    return contact.connections.get(initial=True)


def enqueue(changes: Changes, contact: Contact) -> None:
    """Put a contact in its queue, waiting for an agent (routing runs when the change settles)."""
    contact.agent = None
    changes.contacts_queued = True
    contact.waiting_since = contact.waiting_since or changes.now
    contact.queue_timestamp = contact.queue_timestamp or changes.now
    set_state(contact, Contact.State.INIT, changes)
    contact.save()
    record_contact_event(changes, contact, "QUEUED")


def offer_contact(changes: Changes, contact: Contact, agent: Agent) -> Connection:
    """Ring an agent: the contact leaves the queue; its ring timeout starts."""
    contact.agent = agent
    contact.waiting_since = None
    ringing = Contact.State.INCOMING if contact.type == Contact.Type.QUEUE_CALLBACK else Contact.State.CONNECTING
    set_state(contact, ringing, changes)
    contact.save()
    leg = Connection.objects.create(
        contact=contact,
        type=Connection.Type.AGENT,
        state=Connection.State.CONNECTING,
        state_since=changes.now,
        endpoint_type="agent",
        agent=agent,
        endpoint_name=agent.user.get_full_name() or agent.user.get_username(),
        created_at=changes.now,
    )
    agent.idle_since = None
    changes.agent_changed(agent)
    changes.schedule(Timer.Kind.RING_TIMEOUT, changes.settings.ring_timeout_seconds, contact=contact, connection=leg)
    if agent.softphone_auto_accept and contact.type == Contact.Type.VOICE:
        connect_agent_leg(changes, contact, leg)
    return leg


def connect_agent_leg(changes: Changes, contact: Contact, leg: Connection) -> None:
    """The agent took the contact: a call is connected; a callback starts dialling the customer."""
    set_state(leg, Connection.State.CONNECTED, changes)
    leg.save()
    if contact.type == Contact.Type.QUEUE_CALLBACK:
        set_state(contact, Contact.State.CONNECTING, changes)
        contact.save()
        dial(changes, customer_connection(contact))
        return
    set_state(contact, Contact.State.CONNECTED, changes)
    contact.connected_to_agent_at = changes.now
    contact.save()
    record_contact_event(changes, contact, "CONNECTED_TO_AGENT")


def dial(changes: Changes, connection: Connection) -> None:
    """The simulated network dials a number; its outcome arrives by timer (or at once if invalid)."""
    set_state(connection, Connection.State.CONNECTING, changes)
    connection.save()
    outcome = dialplan.dial_outcome(connection.phone_number)
    if outcome is dialplan.Outcome.INVALID:
        number_leg_failed(changes, connection, dialplan.ERROR_STATE_OF_OUTCOME[outcome])
    elif outcome is dialplan.Outcome.NO_ANSWER:
        changes.schedule(
            Timer.Kind.CUSTOMER_NO_ANSWER,
            changes.settings.customer_ring_seconds,
            contact=connection.contact,
            connection=connection,
        )
    else:
        changes.schedule(
            Timer.Kind.NETWORK_OUTCOME,
            dialplan.ANSWER_DELAY_SECONDS,
            contact=connection.contact,
            connection=connection,
            payload={"outcome": outcome.value},
        )


def number_leg_answered(changes: Changes, connection: Connection) -> None:
    contact = connection.contact
    set_state(connection, Connection.State.CONNECTED, changes)
    connection.save()
    if connection.initial and contact.state == Contact.State.CONNECTING:
        set_state(contact, Contact.State.CONNECTED, changes)
        contact.connected_to_agent_at = contact.connected_to_agent_at or changes.now
        contact.save()
        record_contact_event(changes, contact, "CONNECTED_TO_AGENT")
    for agent_leg in contact.connections.filter(type=Connection.Type.AGENT, state__in=LIVE):
        if agent_leg.agent_id:
            changes.agent(agent_leg.agent_id)


def number_leg_failed(changes: Changes, connection: Connection, error_state: str) -> None:
    """A dialled number did not answer: the customer's leg ends the contact with an error
    state for its agent; a third party's leg simply drops."""
    contact = connection.contact
    set_state(connection, Connection.State.DISCONNECTED, changes)
    connection.save()
    if not connection.initial:
        for agent_leg in contact.connections.filter(type=Connection.Type.AGENT, state__in=LIVE):
            if agent_leg.agent_id:
                changes.agent(agent_leg.agent_id)
        return
    agent = contact.agent
    end_contact(changes, contact)
    if agent is not None:
        changes.agent(agent.pk).error_state = error_state


def end_contact(changes: Changes, contact: Contact) -> None:
    """Every leg hangs up. Agents who talked enter after-call work; ringing agents forget it."""
    set_state(contact, Contact.State.ENDED, changes)
    contact.waiting_since = None
    contact.ended_at = changes.now
    contact.save()
    for leg in contact.connections.filter(state__in=(*LIVE, Connection.State.INIT)):
        if leg.type == Connection.Type.AGENT:
            agent_leaves(changes, contact, leg)
        else:
            set_state(leg, Connection.State.DISCONNECTED, changes)
            leg.save()
    record_contact_event(changes, contact, "DISCONNECTED")


def agent_leaves(changes: Changes, contact: Contact, leg: Connection) -> None:
    """An agent's leg ends: after-call work if the agent had taken the contact (with the
    instance's time limit, if any); a ringing agent simply forgets it."""
    was_ringing = leg.state == Connection.State.CONNECTING
    set_state(leg, Connection.State.DISCONNECTED, changes)
    if was_ringing:
        leg.cleared_at = changes.now
    leg.save()
    if leg.agent_id is None:
        return
    agent = changes.agent(leg.agent_id)
    if not was_ringing and changes.settings.after_call_work_seconds is not None:
        seconds = changes.settings.after_call_work_seconds
        changes.schedule(Timer.Kind.AFTER_CALL_WORK, seconds, contact=contact, connection=leg, agent=agent)


def drop_agent_leg(changes: Changes, contact: Contact, leg: Connection, refused: bool) -> None:
    """A ringing agent leg goes away, and the contact back to its queue. Rejected: it leaves the
    agent's CCP and is not offered to that agent again. Missed: it stays in the CCP as missed
    until the agent clears it or changes state, as in Amazon's CCP."""
    set_state(leg, Connection.State.DISCONNECTED, changes)
    if refused:
        leg.cleared_at = changes.now
    else:
        leg.missed = True
    leg.save()
    if leg.agent_id:
        changes.agent(leg.agent_id)
        if refused and leg.agent_id not in contact.refused_by:
            contact.refused_by = [*contact.refused_by, leg.agent_id]
    if contact.type == Contact.Type.QUEUE_CALLBACK:
        customer = customer_connection(contact)
        set_state(customer, Connection.State.INIT, changes)
        customer.save()
    contact.waiting_since = contact.queue_timestamp
    enqueue(changes, contact)


def clear_agent_leg(changes: Changes, leg: Connection) -> None:
    leg.cleared_at = changes.now
    leg.save()
    if leg.agent_id:
        agent = changes.agent(leg.agent_id)
        if agent.error_state in CUSTOMER_ERROR_STATES or (leg.missed and agent.error_state == "MissedCallAgent"):
            agent.error_state = ""
