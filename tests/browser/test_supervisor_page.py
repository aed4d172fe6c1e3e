"""The supervisor page in Chromium follows a simulated call live."""

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from ccphost.engine import network, seed, services
from ccphost.engine.models import AgentState, Queue
from ccphost.instances.models import Instance
from tests.browser.fixtures import session_cookie

pytestmark = pytest.mark.browser


def test_supervisor_page_updates_live_during_a_call(ccphost_server, new_page, django_user_model):
    instance = Instance.objects.create(alias="acme", name="Acme")
    seed.seed_instance_defaults(instance)
    ada = seed.make_agent(instance, django_user_model.objects.create_user("ada", first_name="Ada"))
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    boss.user_permissions.add(Permission.objects.get(codename="view_engineevent"))
    page = new_page()
    page.context.add_cookies([session_cookie(ccphost_server, boss)])
    page.goto(f"{ccphost_server.url}/connect/acme/supervisor/")
    ada_row = page.locator('#agents tr[data-username="ada"]')
    waiting = page.locator("#queues tbody td:nth-child(2)")
    expect(page.locator("#board-status")).to_have_text("Live")
    expect(ada_row.locator(".state")).to_have_text("Offline")

    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    network.start_inbound_contact(instance, queue, "+15555550123", {})
    expect(waiting).to_have_text("1")

    services.put_agent_state(ada, AgentState.objects.get(instance=instance, name="Available"))
    expect(waiting).to_have_text("0")
    expect(ada_row.locator("td:nth-child(4)")).to_have_text("1")
    expect(ada_row.locator(".state")).not_to_have_text("Offline")
