"""The three layers seen from a real browser: a CRM page on a second loopback origin frames
the CCP only while that origin is approved."""

import pytest

from ccphost.instances.models import Instance
from ccphost.instances.services import Actor, approve_origins, revoke_origins
from tests.browser.fixtures import session_cookie

pytestmark = pytest.mark.browser

CRM_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CRM</title>
<script src="{ccphost}/static/ccphost/connect-streams.js"></script></head>
<body><div id="ccp"></div>
<script>
  window.events = [];
  const bus = connect.core.getEventBus();
  for (const name of ["acknowledge", "ack_timeout", "auth_fail"]) {{
    bus.subscribe(name, () => window.events.push(name));
  }}
  connect.core.initCCP(document.getElementById("ccp"), {{
    ccpUrl: "{ccphost}/connect/acme/ccp-v2/", loginPopup: false, ccpLoadTimeout: 1500,
  }});
</script></body></html>
"""


@pytest.fixture
def acme(transactional_db: None) -> Instance:
    return Instance.objects.create(alias="acme", name="Acme Support")


@pytest.fixture
def agent_page(new_page, ccphost_server, django_user_model):
    """A browser page whose context is signed in to ccphost as an agent."""
    user = django_user_model.objects.create_user("agent1", password="pw-agent-123")
    page = new_page()
    page.context.add_cookies([session_cookie(ccphost_server, user)])
    return page


def crm_page_url(crm_server, ccphost_server) -> str:
    return crm_server.add("/crm.html", CRM_PAGE.format(ccphost=ccphost_server.url))


def test_approved_origin_frames_ccp_and_completes_handshake(acme, ccphost_server, crm_server, agent_page):
    approve_origins(acme, [crm_server.origin], Actor(source="command"))
    page = agent_page
    page.goto(crm_page_url(crm_server, ccphost_server))
    page.wait_for_function("window.events.includes('acknowledge')")
    # The CCP answers the host's synchronize keep-alive with further acknowledgements.
    page.wait_for_function("window.events.filter((e) => e === 'acknowledge').length >= 2")
    frame = page.frame_locator("iframe")
    assert "Acme Support" in frame.locator(".ccp-title").inner_text()


def test_unapproved_origin_is_blocked_by_the_browser(acme, ccphost_server, crm_server, agent_page):
    approve_origins(acme, ["https://other-crm.example"], Actor(source="command"))
    page = agent_page
    blocked = []
    page.on("console", lambda message: blocked.append(message.text) if "frame-ancestors" in message.text else None)
    page.goto(crm_page_url(crm_server, ccphost_server))
    page.wait_for_function("window.events.includes('ack_timeout')")
    assert "acknowledge" not in page.evaluate("window.events")
    assert blocked, "Chromium should report the frame-ancestors violation"


def test_removed_origin_is_blocked_on_reload(acme, ccphost_server, crm_server, agent_page):
    approve_origins(acme, [crm_server.origin], Actor(source="command"))
    page = agent_page
    page.goto(crm_page_url(crm_server, ccphost_server))
    page.wait_for_function("window.events.includes('acknowledge')")

    revoke_origins(acme, [crm_server.origin], Actor(source="command"))
    page.reload()
    page.wait_for_function("window.events.includes('ack_timeout')")
    assert "acknowledge" not in page.evaluate("window.events")


def test_ccp_of_a_signed_out_agent_reports_auth_fail_not_acknowledge(acme, ccphost_server, crm_server, new_page):
    approve_origins(acme, [crm_server.origin], Actor(source="command"))
    page = new_page()
    page.goto(crm_page_url(crm_server, ccphost_server))
    page.wait_for_function("window.events.includes('auth_fail')")
    assert "acknowledge" not in page.evaluate("window.events")
