"""Several tabs of one agent through connect-streams.js: every tab sees every change and the
ringtone plays in exactly one; and connect.ccphost.subscribe, the page's own event feed."""

from typing import Any

import pytest
from playwright.sync_api import Frame, Page

from ccphost.engine import network, seed
from ccphost.engine.models import Queue
from ccphost.instances.models import Instance
from ccphost.instances.services import Actor, approve_origins
from tests.browser.fixtures import CHROMIUM, CHROMIUM_ARGS, elsewhere, session_cookie
from tests.browser.streams_harness import choose_state, crm_page, wait_entry

pytestmark = pytest.mark.browser

CALLER = "+15555550123"


@pytest.fixture
def signed_in_context(transactional_db, ccphost_server, crm_server, new_page, django_user_model):
    instance = Instance.objects.create(alias="acme", name="Acme Support")
    approve_origins(instance, [crm_server.origin], Actor(source="command"))
    seed.seed_instance_defaults(instance)
    user = django_user_model.objects.create_user("agent1", first_name="Ada")
    seed.make_agent(instance, user)
    first = new_page()
    first.context.add_cookies([session_cookie(ccphost_server, user)])
    return instance, first


def ringing(page: Page) -> str:
    frame = next(f for f in page.frames if "/ccp-v2/" in f.url)
    return str(frame.evaluate("document.documentElement.dataset.ringing || ''"))


def frame_wait(page: Page, frame: Frame, expression: str, seconds: float = 10) -> None:
    """Wait until ``expression`` is true in the CCP frame (its CSP refuses wait_for_function's eval)."""
    for _ in range(int(seconds * 10)):
        if frame.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true in the CCP frame: {expression}")


def test_two_tabs_see_every_change_and_one_rings(signed_in_context, ccphost_server, crm_server):
    instance, first = signed_in_context
    url = crm_server.add("/crm.html", crm_page("ccphost", ccphost_server.url))
    second = first.context.new_page()
    tabs = [first, second]
    for tab in tabs:
        tab.goto(url)
        tab.wait_for_function("window.agentApi !== undefined", timeout=20_000)

    choose_state(first, "Available")
    for tab in tabs:
        wait_entry(tab, "stateChange Offline Available")

    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    elsewhere(network.start_inbound_contact, instance, queue, CALLER, {"customerNumber": CALLER})
    for tab in tabs:
        wait_entry(tab, "connecting connecting")
    for _ in range(50):
        states = [ringing(tab) for tab in tabs]
        if "playing" in states:
            break
        first.wait_for_timeout(100)
    assert sorted(states) == ["", "playing"], states  # exactly one tab plays the ringtone

    second.evaluate("contactApi.accept(calls('accept'))")
    for tab in tabs:
        wait_entry(tab, "connected connected")
    for _ in range(50):
        states = [ringing(tab) for tab in tabs]
        if states == ["", ""]:
            break
        first.wait_for_timeout(100)
    assert states == ["", ""], states


SUBSCRIBER_SCRIPT = """
  window.events = [];
  window.feedErrors = [];
  window.feed = connect.ccphost.subscribe((event) => window.events.push(event), {
    onError: (message) => window.feedErrors.push(message),
  });
"""


def test_page_subscription_sees_the_incoming_contact_and_resumes_after_a_sequence(
    signed_in_context, ccphost_server, crm_server
):
    instance, page = signed_in_context
    html = crm_page("ccphost", ccphost_server.url).replace("</script></body>", SUBSCRIBER_SCRIPT + "</script></body>")
    page.goto(crm_server.add("/crm.html", html))
    page.wait_for_function("window.agentApi !== undefined", timeout=20_000)
    choose_state(page, "Available")
    wait_entry(page, "stateChange Offline Available")

    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    elsewhere(network.start_inbound_contact, instance, queue, CALLER, {"customerNumber": CALLER, "orderId": "A-17"})
    wait_entry(page, "connecting connecting")
    # The screen-pop: the contact's attributes reach the page before the agent accepts.
    page.wait_for_function(
        "window.events.some((e) => Object.values(e.attributes).some((a) => a.orderId === 'A-17'))", timeout=15_000
    )
    events: list[dict[str, Any]] = page.evaluate("window.events")
    seqs = [event["seq"] for event in events]
    assert seqs == sorted(set(seqs)), seqs
    assert {event["stream"] for event in events} <= {"agent", "contact"}
    assert page.evaluate("window.feedErrors") == []

    # A new subscription after the last sequence seen receives only what follows.
    last = seqs[-1]
    page.evaluate(
        """(after) => {
          window.feed.unsubscribe();
          window.later = [];
          window.feed = connect.ccphost.subscribe((event) => window.later.push(event), {after});
        }""",
        last,
    )
    page.evaluate("contactApi.accept(calls('accept'))")
    wait_entry(page, "connected connected")
    page.wait_for_function("window.later.length > 0", timeout=15_000)
    later = page.evaluate("window.later.map((e) => e.seq)")
    assert min(later) > last and later == sorted(set(later)), (last, later)


@pytest.mark.parametrize(
    ("softphone", "expected"),
    [
        ("{allowFramedSoftphone: true, disableRingtone: true}", ""),
        ("{allowFramedSoftphone: true, ringtoneUrl: '{ccphost}/static/ccphost/sounds/ring.wav?tone=custom'}", "custom"),
        ("{allowFramedSoftphone: true}", "default"),
    ],
)
def test_host_options_silence_or_replace_the_ringtone(
    signed_in_context, ccphost_server, crm_server, softphone, expected
):
    instance, page = signed_in_context
    html = crm_page("ccphost", ccphost_server.url).replace(
        "softphone: { allowFramedSoftphone: true }", "softphone: " + softphone.replace("{ccphost}", ccphost_server.url)
    )
    page.goto(crm_server.add("/crm.html", html))
    page.wait_for_function("window.agentApi !== undefined", timeout=20_000)
    choose_state(page, "Available")
    wait_entry(page, "stateChange Offline Available")
    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    elsewhere(network.start_inbound_contact, instance, queue, CALLER, {})
    wait_entry(page, "connecting connecting")
    frame = next(f for f in page.frames if "/ccp-v2/" in f.url)
    if expected:
        frame_wait(page, frame, "document.documentElement.dataset.ringing === 'playing'")
        url = frame.evaluate("document.documentElement.dataset.ringtoneUrl")
        assert url.endswith("?tone=custom") == (expected == "custom"), url
    else:
        page.wait_for_timeout(1500)
        assert ringing(page) == ""


def test_sign_out_in_the_ccp_sends_terminated_and_the_host_offers_the_login_popup(
    signed_in_context, ccphost_server, crm_server
):
    _, page = signed_in_context
    page.goto(crm_server.add("/crm.html", crm_page("ccphost", ccphost_server.url)))
    page.wait_for_function("window.agentApi !== undefined", timeout=20_000)
    page.evaluate("connect.core.getEventBus().subscribe('terminated', () => window.log.push('terminated'))")
    with page.expect_popup(timeout=15_000) as opened:
        page.frame_locator("iframe").locator("#sign-out").click()
        wait_entry(page, "terminated")
    popup = opened.value
    popup.wait_for_load_state()
    assert "/connect/acme/login/" in popup.url
    frame = next(f for f in page.frames if "/ccp-v2/" in f.url)
    frame_wait(page, frame, "document.getElementById('ccp-status').textContent !== 'Signed in as agent1'")
    # The session is over for every tab: a fresh CCP frame is not signed in.
    status = page.context.request.get(f"{ccphost_server.url}/connect/acme/ccp-v2/").text()
    assert '"signedIn": false' in status


def test_refused_microphone_is_reported_as_a_softphone_error(signed_in_context, ccphost_server, crm_server, browser):
    # A browser whose permission prompts are all refused (no fake accept-everything UI).
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"] + ["--deny-permission-prompts"]
    refusing = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=args)
    try:
        _, signed_in = signed_in_context
        context = refusing.new_context()
        context.add_cookies(signed_in.context.cookies())
        page = context.new_page()
        html = crm_page("ccphost", ccphost_server.url).replace(
            "connect.agent((agent) => {",
            "connect.agent((agent) => {\n"
            "  agent.onSoftphoneError((e) => window.log.push('softphoneError ' + e.errorType));",
        )
        page.goto(crm_server.add("/crm.html", html))
        page.wait_for_function(
            "(entry) => window.log.includes(entry)", arg="softphoneError microphone_not_shared", timeout=15_000
        )
        frame = next(f for f in page.frames if "/ccp-v2/" in f.url)
        assert "microphone" in frame.evaluate("document.body.innerText").lower()
    finally:
        refusing.close()
