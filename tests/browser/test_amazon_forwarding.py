"""ccphost's agent page in front of Amazon's own CCP: the page forwards what Streams sees to
ccphost, which records agent and contact events and relays them back. Amazon's CCP is outside
this machine, so a stand-in answers at its URL and speaks the protocol."""

import pytest
from playwright.sync_api import expect

from ccphost.engine import seed
from ccphost.engine.models import EngineEvent
from tests.browser.fixtures import session_cookie
from tests.test_forwarding import amazon_connect_instance

pytestmark = pytest.mark.browser

CCP_URL = "https://acme.my.connect.aws/ccp-v2/"  # amazon_connect_instance's

# Amazon's CCP, reduced to the protocol: acknowledge, answer synchronize, send agent updates.
STAND_IN_CCP = """<!doctype html><html><body><script>
  const post = (event, data) => window.parent.postMessage({event, data}, "*");
  const configuration = {name: "Ada", username: "ada", agentARN: "arn:aws:connect:us-east-1:1:instance/i/agent/a",
                         agentStates: [], routingProfile: {name: "Basic", queues: []}};
  const state = (type, name) => ({agentStateARN: "arn:s", type, name, startTimestamp: new Date()});
  const contact = (type) => ({
    contactId: "amzn-1", initialContactId: "amzn-1", type: "voice", initiationMethod: "inbound",
    state: {type, timestamp: new Date()}, queue: {queueARN: "arn:q", name: "BasicQueue"}, connections: [],
  });
  const updates = [
    {state: state("routable", "Available"), contacts: []},
    {state: state("system", "PendingBusy"), contacts: [contact("connecting")]},
    {state: state("system", "Busy"), contacts: [contact("connected")]},
  ];
  window.addEventListener("message", (m) => {
    if (m.data && m.data.event === "synchronize") post("acknowledge", {id: "stand-in"});
  });
  post("acknowledge", {id: "stand-in"});
  updates.forEach((u, i) => setTimeout(() => post("agent::update", {
    snapshot: {...u, nextState: null, skew: 0, snapshotTimestamp: new Date(), localTimestamp: Date.now()},
    configuration,
  }), 300 * (i + 1)));
</script></body></html>"""


def test_agent_page_forwards_amazon_streams_events(transactional_db, ccphost_server, new_page, django_user_model):
    instance = amazon_connect_instance()
    seed.seed_instance_defaults(instance)
    user = django_user_model.objects.create_user("ada", first_name="Ada")
    seed.make_agent(instance, user)
    page = new_page()
    page.context.add_cookies([session_cookie(ccphost_server, user)])
    page.route(f"{CCP_URL}**", lambda route: route.fulfill(status=200, content_type="text/html", body=STAND_IN_CCP))
    page.goto(f"{ccphost_server.url}/connect/acme/agent/")
    expect(page.locator("#agent-log")).to_contain_text("CONNECTED_TO_AGENT", timeout=15_000)
    events = [(e.stream, e.event_type) for e in EngineEvent.objects.order_by("sequence")]
    assert events == [
        ("agent", "LOGIN"),
        ("agent", "STATE_CHANGE"),
        ("contact", "INITIATED"),
        ("agent", "STATE_CHANGE"),
        ("contact", "CONNECTED_TO_AGENT"),
    ]
    log = page.inner_text("#agent-log")
    assert "state Available -> PendingBusy" in log and "ccphost event" in log
