"""The CCP fits 200-320 px wide (compact under 221 px) without scrollbars, during a call.
Screenshots land in test-artifacts/ for a person to look at."""

import pytest
from playwright.sync_api import expect

from ccphost.engine import network, seed, services
from ccphost.engine.models import AgentState, Queue
from ccphost.instances.models import Instance
from tests.browser.fixtures import elsewhere, session_cookie

pytestmark = pytest.mark.browser


@pytest.fixture
def agent_in_call(transactional_db, ccphost_server, django_user_model):
    instance = Instance.objects.create(alias="acme", name="Acme Support with a long name")
    seed.seed_instance_defaults(instance)
    agent = seed.make_agent(instance, django_user_model.objects.create_user("agent1", first_name="Ada"))
    elsewhere(services.put_agent_state, agent, AgentState.objects.get(instance=instance, name="Available"))
    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    attributes = {"customerName": "Katherine Johnson", "account": "ACME-0003", "reason": "A very long reason " * 5}
    elsewhere(network.start_inbound_contact, instance, queue, "+15555550123", attributes)
    return agent


@pytest.mark.parametrize(("width", "height"), [(200, 400), (220, 400), (320, 465)])
def test_ccp_fits_its_frame_during_a_call(agent_in_call, ccphost_server, new_page, artifacts_dir, width, height):
    # The instance's frame size decides the layout: compact below 221 px.
    Instance.objects.filter(pk=agent_in_call.instance_id).update(ccp_width=width, ccp_height=height)
    page = new_page(viewport={"width": width, "height": height})
    page.context.add_cookies([session_cookie(ccphost_server, agent_in_call.user)])
    page.goto(f"{ccphost_server.url}/connect/acme/ccp-v2/")
    page.locator("[data-key=accept]").click()
    expect(page.locator(".contact-connected")).to_be_visible()
    assert page.evaluate("document.body.classList.contains('compact')") is (width < 221)
    page.screenshot(path=str(artifacts_dir / f"ccp-{width}px-in-call.png"))
    overflow = page.evaluate(
        """() => {
          const root = document.documentElement;
          const clipped = [...document.querySelectorAll('button, select, input')]
            .filter((el) => el.getBoundingClientRect().right > root.clientWidth + 0.5)
            .map((el) => el.outerHTML.slice(0, 60));
          const scrollX = root.scrollWidth - root.clientWidth;
          return {scrollX, scrollY: root.scrollHeight - root.clientHeight, clipped};
        }"""
    )
    assert overflow == {"scrollX": 0, "scrollY": 0, "clipped": []}
    for control in ("hold", "mute", "hangup"):
        expect(page.locator(f"[data-key={control}]")).to_be_in_viewport()
