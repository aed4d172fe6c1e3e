"""The engine seen through the real CCP page in Chromium: a simulated call rings, is accepted,
hung up and cleared; an outbound call is answered by the in-process timer loop."""

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ccphost.engine import network, seed, services
from ccphost.engine.models import Contact, Queue
from ccphost.instances.models import Instance
from tests.browser.fixtures import elsewhere, session_cookie
from tests.engine.conftest import state

pytestmark = pytest.mark.browser


@pytest.fixture
def ccp_page(transactional_db, new_page, ccphost_server, django_user_model):
    instance = Instance.objects.create(alias="acme", name="Acme Support")
    seed.seed_instance_defaults(instance)
    user = django_user_model.objects.create_user("agent1", first_name="Ada")
    agent = seed.make_agent(instance, user)
    elsewhere(services.put_agent_state, agent, state(instance, "Available"))
    page = new_page()
    page.context.add_cookies([session_cookie(ccphost_server, user)])
    page.goto(f"{ccphost_server.url}/connect/acme/ccp-v2/")
    page.wait_for_selector("#state-select")
    return page, instance


def test_inbound_call_accept_hang_up_clear(ccp_page):
    page, instance = ccp_page
    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    elsewhere(network.start_inbound_contact, instance, queue, "+15555550123", {"orderId": "A-17"})
    page.locator("[data-key=accept]").click()
    page.wait_for_selector(".contact-connected")
    assert "+15555550123" in page.locator("#contact").inner_text()
    page.locator("[data-key=hangup]").click()
    page.locator("[data-key=clear]").click()
    page.wait_for_selector("#dial-number")
    assert Contact.objects.get().state == "ended"


def test_outbound_call_is_answered_by_the_network(ccp_page):
    page, _ = ccp_page
    page.fill("#dial-number", "+15555550177")
    page.locator("#dial-button").click()
    page.wait_for_selector(".contact-connected", timeout=10_000)  # answered 1 s later, by the timer loop
    assert Contact.objects.get().state == "connected"


@pytest.fixture
def tight_frame_limit(settings):
    """Two frames at once, then one a second: a few quick state changes exceed it."""
    settings.CCPHOST_SOCKET_BURST = 2
    settings.CCPHOST_SOCKET_RATE = 1


def test_a_ccp_closed_for_too_many_frames_says_so_and_waits_before_reconnecting(tight_frame_limit, ccp_page):
    page, _ = ccp_page
    status = page.locator("#ccp-status")
    expect(status).to_have_text(re.compile("^Signed in as"))
    for _ in range(4):  # each change sends a setAgentState frame; the socket is closed with 4429
        for name in ("Break", "Available"):
            page.select_option("#state-select", name)
    expect(status).to_have_text(re.compile("^Too many requests"), timeout=5_000)
    told = time.monotonic()
    expect(status).to_have_text(re.compile("^Signed in as"), timeout=15_000)  # back, on a new socket
    assert time.monotonic() - told > 3  # at least 5 s after the close, not at once


STREAMS = (
    Path(__file__).resolve().parents[1]
    / "browser/vendor/node_modules/amazon-connect-streams/release/connect-streams.js"
)

OFFICIAL_HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CRM</title><script>{streams}</script></head>
<body><div id="ccp" style="width: 320px; height: 465px"></div>
<script>
  window.log = [];
  const note = (entry) => window.log.push(entry);
  connect.core.initCCP(document.getElementById("ccp"), {{
    ccpUrl: "{ccphost}/connect/acme/ccp-v2/", loginPopup: false, softphone: {{ allowFramedSoftphone: true }},
  }});
  connect.agent((agent) => {{
    note("agent:" + agent.getConfiguration().username);
    agent.onStateChange((change) => note("state:" + change.newState));
  }});
  connect.contact((contact) => {{
    note("contact:" + contact.getType() + ":" + contact.getAttributes().orderId.value);
    contact.onConnecting(() => {{
      note("connecting");
      contact.accept({{ success: () => note("accepted"), failure: (err) => note("accept failed " + err) }});
    }});
    contact.onConnected(() => {{
      note("connected:" + contact.getInitialConnection().getEndpoint().phoneNumber);
      contact.getAgentConnection().destroy({{ failure: (err) => note("destroy failed " + err) }});
    }});
    contact.onACW(() => {{
      note("acw");
      contact.clear({{ failure: (err) => note("clear failed " + err) }});
    }});
    contact.onDestroy(() => note("destroyed"));
  }});
</script></body></html>
"""


@pytest.mark.skipif(not STREAMS.exists(), reason="run `make test-deps` for the official amazon-connect-streams")
def test_official_streams_host_takes_a_call_through_ccphost(
    transactional_db,
    new_page,
    ccphost_server,
    crm_server,
    django_user_model,
):
    from ccphost.instances.services import Actor, approve_origins

    instance = Instance.objects.create(alias="acme", name="Acme Support")
    approve_origins(instance, [crm_server.origin], Actor(source="command"))
    seed.seed_instance_defaults(instance)
    agent = seed.make_agent(instance, django_user_model.objects.create_user("agent1"))
    elsewhere(services.put_agent_state, agent, state(instance, "Available"))
    page = new_page()
    page.context.add_cookies([session_cookie(ccphost_server, agent.user)])
    html = OFFICIAL_HOST_PAGE.format(streams=STREAMS.read_text(), ccphost=ccphost_server.url)
    page.goto(crm_server.add("/crm.html", html))
    page.wait_for_function("window.log.includes('agent:agent1')")
    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    elsewhere(network.start_inbound_contact, instance, queue, "+15555550123", {"orderId": "A-17"})
    page.wait_for_function("window.log.includes('destroyed')", timeout=15_000)
    log = page.evaluate("window.log")
    expected = ["contact:voice:A-17", "connecting", "connected:+15555550123", "acw", "destroyed"]
    assert [entry for entry in log if entry in expected] == expected, log
    assert "accepted" in log and "state:Busy" in log and "state:AfterCallWork" in log, log
    assert Contact.objects.get().state == "ended"
