"""The embedded sign-in flow in Chromium: a CRM page on another loopback origin embeds the
CCP of an agent who is not signed in; the CCP says auth_fail, the host library opens the
login popup, the agent signs in there, the popup closes itself and the CCP acknowledges,
with no reload of the CRM page. The host is the official amazon-connect-streams (the
reference for this behaviour)."""

from pathlib import Path

import pytest

from ccphost.engine import seed
from ccphost.instances.models import Instance
from ccphost.instances.services import Actor, approve_origins

pytestmark = pytest.mark.browser

STREAMS = Path(__file__).resolve().parent / "vendor/node_modules/amazon-connect-streams/release/connect-streams.js"

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CRM</title><script>{streams}</script></head>
<body><div id="ccp" style="width: 320px; height: 465px"></div>
<script>
  window.log = [];
  window.pageLoadedAt = Date.now();
  connect.core.initCCP(document.getElementById("ccp"), {{
    ccpUrl: "{ccphost}/connect/acme/ccp-v2/",
    loginPopup: true,
    loginPopupAutoClose: true,
    loginUrl: "{ccphost}/connect/acme/login/",
    ccpAckTimeout: 1000, ccpSynTimeout: 500, ccpLoadTimeout: 2000,
    softphone: {{ allowFramedSoftphone: true }},
  }});
  const bus = connect.core.getEventBus();  // the official library has it once initCCP ran
  bus.subscribe(connect.EventType.AUTH_FAIL, () => window.log.push("auth_fail"));
  bus.subscribe(connect.EventType.ACKNOWLEDGE, () => {{
    if (!window.log.includes("acknowledge")) window.log.push("acknowledge");
  }});
  connect.agent((agent) => window.log.push("agent:" + agent.getConfiguration().username));
</script></body></html>
"""


@pytest.mark.skipif(not STREAMS.exists(), reason="run `make test-deps` for the official amazon-connect-streams")
def test_login_popup_signs_the_agent_in_without_reloading_the_crm_page(
    transactional_db, ccphost_server, crm_server, new_page, django_user_model
):
    instance = Instance.objects.create(alias="acme", name="Acme Support", login_popup_auto_close=True)
    approve_origins(instance, [crm_server.origin], Actor(source="command"))
    seed.seed_instance_defaults(instance)
    seed.make_agent(instance, django_user_model.objects.create_user("agent1", password="pw-agent1-pw"))
    page = new_page()
    url = crm_server.add("/crm.html", HOST_PAGE.format(streams=STREAMS.read_text(), ccphost=ccphost_server.url))

    with page.expect_popup(timeout=15_000) as opened:
        page.goto(url)
    popup = opened.value
    popup.wait_for_load_state()
    assert "/connect/acme/login/" in popup.url
    loaded_at = page.evaluate("window.pageLoadedAt")
    popup.fill("#id_username", "agent1")
    popup.fill("#id_password", "pw-agent1-pw")
    popup.click("button[type=submit]")
    popup.wait_for_event("close", timeout=15_000)

    page.wait_for_function("window.log.includes('agent:agent1')", timeout=20_000)
    log = page.evaluate("window.log")
    assert log.index("auth_fail") < log.index("acknowledge") < log.index("agent:agent1"), log
    assert page.evaluate("window.pageLoadedAt") == loaded_at, "the CRM page was not reloaded"
