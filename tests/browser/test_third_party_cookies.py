"""The embedded sign-in across sites: the CRM page on http://localhost:<port>, ccphost on
http://127.0.0.1:<port> (another site for the browser, so the CCP frame is third-party).
With third-party cookies allowed, the session cookie (SameSite=None; Secure) set by the login
popup reaches the framed CCP. With them blocked, the CCP says exactly what to do and, after
one click on "Allow", gets the session through the Storage Access API."""

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext

from ccphost.engine import seed
from ccphost.instances.models import Instance
from ccphost.instances.services import Actor, approve_origins
from tests.browser.fixtures import CHROMIUM, CHROMIUM_ARGS
from tests.browser.streams_harness import crm_page, sign_in_through_popup

pytestmark = pytest.mark.browser


@pytest.fixture
def cross_site(transactional_db, ccphost_server, crm_server, django_user_model, settings):
    settings.SESSION_COOKIE_SAMESITE = "None"
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SAMESITE = "None"
    settings.CSRF_COOKIE_SECURE = True
    instance = Instance.objects.create(alias="acme", name="Acme Support", login_popup_auto_close=True)
    crm_origin = crm_server.origin.replace("127.0.0.1", "localhost")
    approve_origins(instance, [crm_origin], Actor(source="command"))
    seed.seed_instance_defaults(instance)
    seed.make_agent(instance, django_user_model.objects.create_user("agent1", password="pw-agent-pw"))
    html = crm_page("ccphost", ccphost_server.url).replace(
        "<script>", f'<script>window.ccpUrlForTest = "{ccphost_server.url}/connect/acme/ccp-v2/";', 1
    )
    url = crm_server.add("/crm.html", html).replace("127.0.0.1", "localhost")
    return url


@pytest.fixture
def profile_allowing_third_party_cookies(browser: Browser, tmp_path) -> Iterator[BrowserContext]:
    """A browser profile whose cookie setting allows third-party cookies (Chromium's own
    default blocks them)."""
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text(json.dumps({"profile": {"cookie_controls_mode": 0}}))
    context = browser.browser_type.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    context.set_default_timeout(10_000)
    yield context
    context.close()


def test_session_cookie_reaches_the_ccp_framed_on_another_site(cross_site, profile_allowing_third_party_cookies):
    page = profile_allowing_third_party_cookies.new_page()
    sign_in_through_popup(page, cross_site, "agent1", "pw-agent-pw")
    page.wait_for_function("window.agentApi !== undefined", timeout=20_000)
    assert page.evaluate("window.log[0]").startswith("agent ")


def test_blocked_third_party_cookies_get_instructions_and_storage_access(cross_site, new_page):
    # Playwright's contexts are incognito profiles, where Chromium blocks third-party cookies.
    page = new_page()
    sign_in_through_popup(page, cross_site, "agent1", "pw-agent-pw")
    frame = page.frame_locator("iframe")
    note = frame.locator("#storage-access-note")
    note.wait_for(timeout=15_000)
    assert "third-party cookies" in note.inner_text()
    assert page.evaluate("window.agentApi === undefined")
    # Stands in for the agent accepting Chromium's "allow cookies?" prompt after the click,
    # which a headless browser cannot show.
    page.context.grant_permissions(["storage-access"])
    frame.locator("#storage-access").click()
    page.wait_for_function("window.agentApi !== undefined", timeout=20_000)
    assert page.evaluate("window.log[0]") == "agent agent1 Offline"

    # A new frame (the next page of the CRM, or the host's own iframe reload) takes the access
    # it was given without another click.
    page.evaluate(
        """() => {
          connect.core.terminate();
          window.log = [];
          connect.core.initCCP(document.getElementById("ccp"), {ccpUrl: window.ccpUrlForTest, loginPopup: false});
          connect.agent((agent) => window.log.push("again " + agent.getName()));
        }"""
    )
    page.wait_for_function("window.log.includes('again agent1')", timeout=15_000)
