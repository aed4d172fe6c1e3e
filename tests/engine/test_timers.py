"""Time rules: ring timeout, after-call work limit, callbacks; each fired exactly once, also
by concurrent workers and after a restart."""

import asyncio

import pytest
from django.core.management import call_command
from django.db import connections

from ccphost import background
from ccphost.background import BackgroundWorkMiddleware, running_task
from ccphost.engine import network, services
from ccphost.engine.core import engine_settings
from ccphost.engine.models import Contact, EngineEvent, Timer
from ccphost.engine.snapshots import snapshot_frame
from ccphost.engine.timers import run_due_timers
from tests.engine.conftest import call, fresh, later, leg_of, state
from tests.engine.test_routing import run_together

NO_ANSWER = "+15555550003"


@pytest.mark.django_db
def test_ring_timeout_misses_the_call_and_requeues_it(center, make_agent, basic_queue):
    ada = make_agent("ada")
    contact = call(center, basic_queue)
    assert run_due_timers(later(19)) == 0
    bob = make_agent("bob")
    assert run_due_timers(later(21)) == 1
    assert (fresh(ada).state_type, fresh(ada).state_name) == ("error", "MissedCallAgent")
    assert fresh(contact).agent == bob  # back in the queue, routed to the next agent
    assert run_due_timers(later(22)) == 0
    missed = snapshot_frame(ada.pk)["snapshot"]
    assert missed["state"]["name"] == "MissedCallAgent"
    assert [c["state"]["type"] for c in missed["contacts"]] == ["missed"]
    services.clear_contact(ada, str(contact.contact_id))
    assert fresh(ada).state_name == "Available"


@pytest.mark.django_db
def test_choosing_a_state_after_a_missed_call_closes_it(center, make_agent, basic_queue):
    ada = make_agent("ada")
    call(center, basic_queue)
    run_due_timers(later(21))
    services.put_agent_state(ada, state(center, "Break"))
    assert (fresh(ada).state_name, snapshot_frame(ada.pk)["snapshot"]["contacts"]) == ("Break", [])


@pytest.mark.django_db
def test_ring_timeout_is_per_instance(center, make_agent, basic_queue):
    settings = engine_settings(center)
    settings.ring_timeout_seconds = 5
    settings.save()
    ada = make_agent("ada")
    call(center, basic_queue)
    run_due_timers(later(6))
    assert fresh(ada).state_name == "MissedCallAgent"


@pytest.mark.django_db
def test_accepted_call_does_not_time_out(center, make_agent, basic_queue):
    ada = make_agent("ada")
    contact = call(center, basic_queue)
    services.accept_contact(ada, str(contact.contact_id))
    run_due_timers(later(30))
    assert fresh(ada).state_name == "Busy"
    assert Timer.objects.get(kind="ring_timeout").outcome.startswith("stale")


@pytest.mark.django_db
def test_after_call_work_limit_clears_it(center, make_agent, basic_queue):
    settings = engine_settings(center)
    settings.after_call_work_seconds = 10
    settings.save()
    ada = make_agent("ada")
    contact = call(center, basic_queue)
    services.accept_contact(ada, str(contact.contact_id))
    services.destroy_contact(ada, str(contact.contact_id))
    run_due_timers(later(5))
    assert fresh(ada).state_name == "AfterCallWork"
    run_due_timers(later(11))
    assert fresh(ada).state_name == "Available"


@pytest.mark.django_db
def test_after_call_work_waits_for_the_agent_without_a_limit(center, make_agent, basic_queue):
    ada = make_agent("ada")
    contact = call(center, basic_queue)
    services.accept_contact(ada, str(contact.contact_id))
    services.destroy_contact(ada, str(contact.contact_id))
    run_due_timers(later(3600))
    assert fresh(ada).state_name == "AfterCallWork"


@pytest.mark.django_db
def test_callback_is_offered_then_dials_the_customer(center, make_agent, basic_queue):
    ada = make_agent("ada")
    contact = network.start_queue_callback(center, basic_queue, "+15555550188")
    contact = fresh(contact)
    assert (contact.type, contact.state, contact.agent) == ("queue_callback", "incoming", ada)
    services.accept_contact(ada, str(contact.contact_id))
    customer = contact.connections.get(initial=True)
    assert (fresh(contact).state, fresh(customer).state) == ("connecting", "connecting")
    run_due_timers(later(2))
    assert (fresh(contact).state, fresh(customer).state, fresh(ada).state_name) == ("connected", "connected", "Busy")


@pytest.mark.django_db
def test_unanswered_callback_is_missed_then_retried_as_set(center, make_agent, basic_queue):
    settings = engine_settings(center)
    settings.callback_retries, settings.callback_retry_delay_seconds = 1, 60
    settings.save()
    ada = make_agent("ada")
    first = network.start_queue_callback(center, basic_queue, NO_ANSWER)
    services.accept_contact(ada, str(first.contact_id))
    run_due_timers(later(31))
    assert fresh(ada).state_name == "MissedCallCustomer"
    services.clear_contact(ada, str(first.contact_id))
    assert fresh(ada).state_name == "Available"
    run_due_timers(later(92))
    retry = Contact.objects.exclude(pk=first.pk).get()
    assert (retry.initial_contact, retry.previous_contact, retry.callback_attempt) == (first, first, 1)
    assert retry.agent == ada and leg_of(retry, ada).state == "connecting"
    services.accept_contact(ada, str(retry.contact_id))
    run_due_timers(later(130))
    assert fresh(ada).state_name == "MissedCallCustomer"
    run_due_timers(later(500))
    assert Contact.objects.count() == 2  # retries exhausted


def pending_ring_timeouts(center, make_agent, basic_queue, count):
    for i in range(count):
        make_agent(f"agent{i}")
        call(center, basic_queue)
    assert Timer.objects.filter(kind="ring_timeout", fired_at__isnull=True).count() == count


def test_two_workers_fire_each_timer_exactly_once(concurrent_db, center, make_agent, basic_queue):
    pending_ring_timeouts(center, make_agent, basic_queue, 4)
    moment = later(25)
    fired = run_together(lambda: run_due_timers(moment), lambda: run_due_timers(moment))
    assert sum(fired) == 4, fired
    assert EngineEvent.objects.filter(event_type="MISSED_BY_AGENT").count() == 4
    assert not Timer.objects.filter(kind="ring_timeout", fired_at__isnull=True).exists()


def test_two_workers_fire_callback_retries_exactly_once(concurrent_db, center, make_agent, basic_queue):
    ada = make_agent("ada", available=False)
    first = network.start_queue_callback(center, basic_queue, NO_ANSWER)
    Timer.objects.create(instance=center, kind=Timer.Kind.CALLBACK_RETRY, due_at=later(0), contact=first)
    moment = later(1)
    fired = run_together(lambda: run_due_timers(moment), lambda: run_due_timers(moment))
    assert sum(fired) == 1
    assert Contact.objects.filter(previous_contact=first).count() == 1
    assert fresh(ada).state_name == "Offline"


@pytest.mark.django_db(transaction=True)
def test_timers_survive_a_restart(center, make_agent, basic_queue):
    ada = make_agent("ada")
    call(center, basic_queue)
    background._tasks.clear()  # a new process: nothing in memory
    connections.close_all()
    assert run_due_timers(later(60)) == 1
    assert fresh(ada).state_name == "MissedCallAgent"


@pytest.mark.django_db
def test_run_timers_command_once(center, make_agent, basic_queue):
    ada = make_agent("ada")
    call(center, basic_queue)
    call_command("run_timers", "--once", "--at", later(25).isoformat())
    assert fresh(ada).state_name == "MissedCallAgent"


def test_two_run_timers_processes_fire_each_timer_exactly_once(concurrent_db, center, make_agent, basic_queue):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    pending_ring_timeouts(center, make_agent, basic_queue, 6)
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"  # a file: concurrent_db skipped the in-memory database
    else:
        host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url}
    command = [sys.executable, "manage.py", "run_timers", "--once", "--at", later(25).isoformat()]
    root = Path(__file__).resolve().parents[2]
    workers = [subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    assert sum(int(out.split()[0]) for out in outputs) == 6, outputs
    assert EngineEvent.objects.filter(event_type="MISSED_BY_AGENT").count() == 6


@pytest.mark.django_db
def test_after_call_work_limit_applies_after_a_transfer(center, make_agent, basic_queue):
    from ccphost.engine.services import Endpoint

    settings = engine_settings(center)
    settings.after_call_work_seconds = 10
    settings.save()
    ada = make_agent("ada")
    contact = call(center, basic_queue)
    services.accept_contact(ada, str(contact.contact_id))
    services.create_additional_connection(ada, str(contact.contact_id), Endpoint(type="queue", queue=basic_queue))
    assert fresh(ada).state_name == "AfterCallWork"
    run_due_timers(later(11))
    assert fresh(ada).state_name == "PendingBusy"  # cleared, Available, and offered the transferred contact


@pytest.mark.django_db
def test_unanswered_third_party_does_not_retry_the_callback(center, make_agent, basic_queue):
    from ccphost.engine.services import Endpoint

    ada = make_agent("ada")
    contact = network.start_queue_callback(center, basic_queue, "+15555550188")
    services.accept_contact(ada, str(contact.contact_id))
    run_due_timers(later(2))
    services.create_additional_connection(
        ada, str(contact.contact_id), Endpoint(type="phone_number", phone_number=NO_ANSWER)
    )
    run_due_timers(later(40))
    assert fresh(contact).state == "connected"
    assert not Timer.objects.filter(kind="callback_retry").exists()


async def test_background_work_middleware_starts_the_timer_loop_once(settings):
    settings.CCPHOST_TIMER_LOOP = True
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["type"])

    wrapped = BackgroundWorkMiddleware(app)
    await wrapped({"type": "http"}, None, None)
    first = running_task("timers")
    await wrapped({"type": "http"}, None, None)
    assert first is not None and running_task("timers") is first and calls == ["http", "http"]
    first.cancel()
    await asyncio.sleep(0)  # let the cancellation land
    await wrapped({"type": "lifespan"}, None, None)
    assert running_task("timers") is first  # lifespan events do not start it
