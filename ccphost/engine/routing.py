"""Routing: waiting contacts go to the longest-idle Available agent with a free voice slot
whose routing profile serves their queue, highest queue priority first, oldest first.

It runs inside the instance's engine lock, so two agents never get the same contact."""

from ccphost.engine.core import SAVE_AGENT, Changes
from ccphost.engine.events import share_instance
from ccphost.engine.lifecycle import offer_contact
from ccphost.engine.models import Agent, AgentState, Connection, Contact
from ccphost.engine.prepared import PreparedQuery

OPEN_LEGS = PreparedQuery(
    lambda agent_pk: Connection.objects.filter(agent_id=agent_pk, cleared_at__isnull=True).select_related(
        "contact__queue", "contact__initial_contact"
    )
)

WAITING_CONTACTS = PreparedQuery(
    lambda instance_pk, state: (
        Contact.objects.select_for_update()
        .filter(instance_id=instance_pk, state=state, waiting_since__isnull=False)
        .order_by("waiting_since", "pk")
    )
)


def open_legs(agent: Agent) -> list[Connection]:
    """The agent's contacts still in their CCP (ringing, talking, or in after-call work),
    with their contacts and queues (sharing the agent's loaded instance: ARNs cost no query)."""
    legs = OPEN_LEGS(agent.pk)
    for leg in legs:
        leg.agent = agent
        share_instance(agent.instance, leg.contact.queue)
    return legs


def displayed_state(agent: Agent, legs: list[Connection]) -> tuple[str, str]:
    if agent.error_state:
        return "error", agent.error_state
    if not legs:
        return agent.status.type, agent.status.name
    live = [leg for leg in legs if leg.state in Connection.LIVE_STATES]
    if not live:
        return "system", "AfterCallWork"
    leg = live[0]
    if leg.state == Connection.State.CONNECTING:
        return "system", "PendingBusy"
    contact = leg.contact
    if contact.state == Contact.State.CONNECTING:
        return "system", "CallingCustomer"
    return "system", "Busy"


def refresh_agent_state(changes: Changes, agent: Agent) -> list[Connection]:
    """Recompute what the agent's CCP shows, apply a pending next state once the agent's
    contacts are cleared, and keep `idle_since` for longest-idle routing. Returns the
    agent's open legs (open_legs)."""
    legs = changes.open_legs(agent)
    if not legs and agent.next_status_id is not None and not agent.error_state:
        agent.status = agent.next_status  # type: ignore[assignment]
        agent.status_since = changes.now
        agent.next_status = None
    state_type, state_name = displayed_state(agent, legs)
    if (state_type, state_name) != (agent.state_type, agent.state_name):
        agent.state_type, agent.state_name, agent.state_since = state_type, state_name, changes.now
    if is_free(agent, legs):
        agent.idle_since = agent.idle_since or changes.now
    else:
        agent.idle_since = None
    return legs


def is_free(agent: Agent, legs: list[Connection]) -> bool:
    """Routable with no contact: Amazon Connect's VOICE concurrency is 1, after-call work included."""
    return agent.state_type == AgentState.Type.ROUTABLE and not legs


def route_waiting_contacts(changes: Changes) -> bool:
    """Offer waiting contacts to free agents; True if any was offered."""
    waiting = WAITING_CONTACTS(changes.instance.pk, Contact.State.INIT)
    if not waiting:
        return False
    for agent in changes.agents.values():
        SAVE_AGENT(agent)  # routing reads who is idle from the database
    offered = False
    candidates = Agent.objects.filter(
        instance=changes.instance, state_type=AgentState.Type.ROUTABLE, idle_since__isnull=False
    ).order_by("idle_since", "pk")
    for agent_pk in list(candidates.values_list("pk", flat=True)):
        agent = changes.agent(agent_pk)
        if agent.idle_since is None or agent.state_type != AgentState.Type.ROUTABLE or open_legs(agent):
            continue
        contact = best_contact_for(agent, waiting)
        if contact is not None:
            waiting.remove(contact)
            offer_contact(changes, contact, agent)
            offered = True
        if not waiting:
            break
    return offered


def best_contact_for(agent: Agent, waiting: list[Contact]) -> Contact | None:
    priorities = dict(agent.routing_profile.queue_entries.values_list("queue_id", "priority"))
    eligible = [
        c for c in waiting if c.queue_id is not None and c.queue_id in priorities and agent.pk not in c.refused_by
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda c: (priorities[c.queue_id or 0], c.waiting_since, c.pk))
