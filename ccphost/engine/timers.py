"""Time rules, persisted in the Timer table so a restart loses none: ring timeouts, after-call
work limits, the simulated network's answers, unanswered customers and callback retries.

`run_due_timers(now)` fires each due timer exactly once, however many processes call it: it
takes the instance's engine lock first, then claims the timer row (skip_locked where the
database has it) and marks it fired in the same transaction as its effect."""

import logging
from collections.abc import Callable
from datetime import datetime

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from ccphost.background import repeat, start_once
from ccphost.engine import dialplan
from ccphost.engine.core import Changes, engine_transaction
from ccphost.engine.events import record_contact_event
from ccphost.engine.lifecycle import (
    clear_agent_leg,
    drop_agent_leg,
    enqueue,
    number_leg_answered,
    number_leg_failed,
)
from ccphost.engine.models import Connection, Contact, Timer
from ccphost.instances.models import Instance

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.25


def locked_leg(timer: Timer) -> Connection | None:
    if timer.connection_id is None:
        return None
    return (
        Connection.objects.select_for_update(of=("self",))
        .select_related("contact")
        .filter(pk=timer.connection_id)
        .first()
    )


def ring_timeout(changes: Changes, timer: Timer) -> str:
    leg = locked_leg(timer)
    if leg is None or leg.state != Connection.State.CONNECTING or leg.cleared_at or leg.agent_id is None:
        return "stale: no longer ringing"
    contact = Contact.objects.select_for_update().get(pk=leg.contact_id)
    agent = changes.agent(leg.agent_id)
    drop_agent_leg(changes, contact, leg, refused=False)
    agent.error_state = "MissedCallAgent"
    record_contact_event(changes, contact, "MISSED_BY_AGENT", MissingAgentArn=agent.arn)
    return "missed: contact back in queue"


def after_call_work_limit(changes: Changes, timer: Timer) -> str:
    leg = locked_leg(timer)
    if leg is None or leg.cleared_at or leg.state != Connection.State.DISCONNECTED:
        return "stale: already cleared"
    clear_agent_leg(changes, leg)
    return "after-call work cleared"


def network_outcome(changes: Changes, timer: Timer) -> str:
    leg = locked_leg(timer)
    if leg is None or leg.state != Connection.State.CONNECTING:
        return "stale: no longer dialling"
    outcome = dialplan.Outcome(timer.payload.get("outcome", "answer"))
    if outcome is dialplan.Outcome.ANSWER:
        number_leg_answered(changes, leg)
    else:
        number_leg_failed(changes, leg, dialplan.ERROR_STATE_OF_OUTCOME[outcome])
    return outcome.value


def customer_no_answer(changes: Changes, timer: Timer) -> str:
    leg = locked_leg(timer)
    if leg is None or leg.state != Connection.State.CONNECTING:
        return "stale: no longer dialling"
    number_leg_failed(changes, leg, "MissedCallCustomer")
    contact = leg.contact
    retries_left = contact.callback_attempt < changes.settings.callback_retries
    if leg.initial and contact.type == Contact.Type.QUEUE_CALLBACK and retries_left:
        changes.schedule(Timer.Kind.CALLBACK_RETRY, changes.settings.callback_retry_delay_seconds, contact=contact)
        return "not answered: callback retry scheduled"
    return "not answered"


def callback_retry(changes: Changes, timer: Timer) -> str:
    """The retry is a new callback contact, queued again, linked to the first one."""
    previous = Contact.objects.select_related("initial_contact").get(pk=timer.contact_id or 0)
    retry = Contact.objects.create(
        instance=changes.instance,
        type=Contact.Type.QUEUE_CALLBACK,
        initiation_method=Contact.InitiationMethod.CALLBACK,
        state_since=changes.now,
        queue=previous.queue,
        customer_number=previous.customer_number,
        attributes=previous.attributes,
        initial_contact=previous.initial_contact or previous,
        previous_contact=previous,
        callback_attempt=previous.callback_attempt + 1,
        created_at=changes.now,
    )
    Connection.objects.create(
        contact=retry,
        type=Connection.Type.OUTBOUND,
        initial=True,
        state=Connection.State.INIT,
        state_since=changes.now,
        phone_number=previous.customer_number,
        endpoint_name=previous.customer_number,
        created_at=changes.now,
    )
    record_contact_event(changes, retry, "INITIATED")
    enqueue(changes, retry)
    return f"retry {retry.callback_attempt} queued as {retry.contact_id}"


HANDLERS: dict[str, Callable[[Changes, Timer], str]] = {
    Timer.Kind.RING_TIMEOUT: ring_timeout,
    Timer.Kind.AFTER_CALL_WORK: after_call_work_limit,
    Timer.Kind.NETWORK_OUTCOME: network_outcome,
    Timer.Kind.CUSTOMER_NO_ANSWER: customer_no_answer,
    Timer.Kind.CALLBACK_RETRY: callback_retry,
}


def fire_timer(timer_pk: int, instance: Instance, now: datetime) -> bool:
    with engine_transaction(instance, now=now) as changes:
        claim = Timer.objects.filter(pk=timer_pk, fired_at__isnull=True)
        if db_connection.features.has_select_for_update_skip_locked:
            claim = claim.select_for_update(skip_locked=True)
        timer = claim.first()
        if timer is None:
            return False  # another process fired it
        timer.outcome = HANDLERS[timer.kind](changes, timer)[:200]
        timer.fired_at = now
        timer.save()
    return True


def mark_failed(timer_pk: int, now: datetime, error: Exception) -> None:
    with transaction.atomic():
        Timer.objects.filter(pk=timer_pk, fired_at__isnull=True).update(fired_at=now, outcome=f"error: {error}"[:200])


def run_due_timers(now: datetime | None = None, limit: int = 200) -> int:
    """Fire the timers due at `now`; returns how many this call fired."""
    now = now or timezone.now()
    due = Timer.objects.filter(fired_at__isnull=True, due_at__lte=now).select_related("instance")
    fired = 0
    for timer in list(due.order_by("due_at", "pk")[:limit]):
        try:
            fired += fire_timer(timer.pk, timer.instance, now)
        except Exception as error:
            logger.exception("Timer %s (%s) failed", timer.pk, timer.kind)
            mark_failed(timer.pk, now, error)
    return fired


async def run_due_timers_now() -> None:
    await database_sync_to_async(run_due_timers)()


def start_timer_loop() -> None:
    """Run due timers every 250 ms in this process's event loop; idempotent per process.
    Off with CCPHOST_TIMER_LOOP = False (then run `manage.py run_timers`)."""
    if getattr(settings, "CCPHOST_TIMER_LOOP", True):
        start_once("timers", lambda: repeat(TICK_SECONDS, run_due_timers_now, "Running due timers"))
