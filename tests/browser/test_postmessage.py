"""Layer three: the CCP page talks only with its approved parent, and never posts to '*'."""

import re
from pathlib import Path

import pytest

from ccphost.instances.models import Instance
from ccphost.instances.services import Actor, approve_origins
from tests.browser.fixtures import PageServer, session_cookie

pytestmark = pytest.mark.browser
STATIC = Path(__file__).resolve().parents[2] / "static" / "ccphost"

# The CRM page embeds the CCP directly and records every message the CCP posts to it.
CRM_PAGE = """<!doctype html><meta charset="utf-8"><title>CRM</title>
<iframe id="ccp" src="{ccp}"></iframe><iframe id="other" src="{other}"></iframe>
<script>
  window.received = [];
  window.addEventListener("message", (m) => {{
    if (m.source === document.getElementById("ccp").contentWindow) window.received.push(m.data.event);
  }});
  window.sendToCcp = (message) => document.getElementById("ccp").contentWindow.postMessage(message, "{ccp_origin}");
</script>"""

# A page of another origin inside the CRM page that tries to drive the CCP frame.
INTRUDER_PAGE = """<!doctype html><meta charset="utf-8"><script>
  window.attack = () => window.parent.frames[0].postMessage(
    {event: "broadcast", data: {event: "intruder", data: 1}}, "*");
</script>"""


@pytest.fixture
def signed_in_page(transactional_db, ccphost_server, new_page, django_user_model):
    user = django_user_model.objects.create_user("agent1")
    page = new_page()
    page.context.add_cookies([session_cookie(ccphost_server, user)])
    return page


def test_ccp_ignores_messages_that_do_not_come_from_its_parent(ccphost_server, crm_server, signed_in_page):
    instance = Instance.objects.create(alias="acme", name="Acme")
    approve_origins(instance, [crm_server.origin], Actor(source="command"))
    intruder = PageServer()
    try:
        page_url = crm_server.add(
            "/crm.html",
            CRM_PAGE.format(
                ccp=f"{ccphost_server.url}/connect/acme/ccp-v2/",
                ccp_origin=ccphost_server.url,
                other=intruder.add("/intruder.html", INTRUDER_PAGE),
            ),
        )
        page = signed_in_page
        page.goto(page_url)
        page.wait_for_function("window.received.includes('acknowledge')")

        page.frame_locator("#other").locator("body").evaluate("() => window.attack()")
        page.evaluate("window.sendToCcp({event: 'broadcast', data: {event: 'from_parent', data: 1}})")
        page.wait_for_function("window.received.includes('from_parent')")
        assert "intruder" not in page.evaluate("window.received")
    finally:
        intruder.stop()


def test_no_script_of_ccphost_posts_to_any_origin():
    wildcard = re.compile(r"postMessage\([^)]*,\s*['\"]\*['\"]")
    offenders = [p.name for p in STATIC.rglob("*.js") if wildcard.search(p.read_text())]
    assert offenders == []
