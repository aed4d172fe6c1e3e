"""ccphost's connect-streams.js in Chromium without a CCP: bad arguments throw clear errors,
the logger formats and downloads, and the events derived from a long random series of
agent snapshots are exactly those of the official amazon-connect-streams."""

import json
import random
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.browser.streams_harness import OFFICIAL_MISSING, STREAMS, library_tag

pytestmark = pytest.mark.browser

BLANK = "<!doctype html><html><body></body></html>"

SYNTHETIC_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CRM</title>{library}</head>
<body><div id="ccp"></div>
<script>
  connect.core.initCCP(document.getElementById("ccp"), {{
    ccpUrl: "{blank}", loginPopup: false, ccpLoadTimeout: 600000,
  }});
  window.log = [];
  const note = (...parts) => window.log.push(parts.join(" "));
  const stateOf = (c) => {{ try {{ return c.getState().type; }} catch (error) {{ return error.name; }} }};
  connect.agent((agent) => {{
    note("agent", agent.getState().name);
    const events = ["Refresh", "Routable", "NotRoutable", "Offline", "Error", "AfterCallWork",
                    "EnqueuedNextState", "ClearedNextState"];
    for (const name of events) agent["on" + name]((a) => note(name, a.getState().name));
    agent.onStateChange((change) => note("StateChange", change.oldState, change.newState));
  }});
  connect.contact((contact) => {{
    const id = contact.getContactId();
    note("contact", id, stateOf(contact));
    const events = ["Refresh", "Incoming", "Pending", "Connecting", "Connected", "Missed", "Ended", "ACW",
                    "Error", "Destroy"];
    for (const name of events) contact["on" + name](() => note(name, id, stateOf(contact)));
  }});
  const revive = (value, key) => {{
    if (typeof value === "number" && /imestamp$/.test(key || "")) return new Date(value);
    if (Array.isArray(value)) return value.map((v) => revive(v));
    if (value && typeof value === "object") {{
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v, k)]));
    }}
    return value;
  }};
  window.feed = (updates) => {{
    for (const update of updates) connect.core.getEventBus().trigger("agent::update", revive(update));
    return window.log;
  }};
</script></body></html>
"""

AGENT_STATES = [
    ("routable", "Available"),
    ("not_routable", "Break"),
    ("offline", "Offline"),
    ("system", "PendingBusy"),
    ("system", "Busy"),
    ("not_routable", "AfterCallWork"),
    ("error", "MissedCallAgent"),
    ("error", "LineEngagedCustomer"),
    ("error", "Default"),
]
CONTACT_STATES = ["incoming", "pending", "connecting", "connected", "paused", "missed", "error", "ended", "rejected"]
CONFIGURATION = {
    "name": "Ada",
    "username": "agent1",
    "softphoneEnabled": True,
    "agentStates": [{"agentStateARN": "arn:s1", "type": "routable", "name": "Available"}],
    "permissions": [],
    "routingProfile": {
        "name": "Basic",
        "routingProfileId": "arn:aws:connect:us-east-1:123456789012:instance/0000-1111/routing-profile/rp",
        "queues": [],
    },
}


def random_day(seed: int, steps: int = 60) -> list[dict[str, Any]]:
    """A series of agent::update payloads in which anything may change."""
    rng = random.Random(seed)
    contacts: dict[str, str] = {}
    state = AGENT_STATES[0]
    next_state = None
    updates = []
    for step in range(steps):
        if rng.random() < 0.35:
            state = rng.choice(AGENT_STATES)
        if rng.random() < 0.15:
            next_state = None if next_state else {"name": "Break", "type": "not_routable"}
        if rng.random() < 0.3 and len(contacts) < 3:
            contacts[f"contact-{seed}-{step}"] = rng.choice(CONTACT_STATES)
        for contact_id in list(contacts):
            roll = rng.random()
            if roll < 0.15:
                del contacts[contact_id]
            elif roll < 0.55:
                contacts[contact_id] = rng.choice(CONTACT_STATES)
        now = 1_700_000_000_000 + step * 1000
        updates.append(
            {
                "snapshot": {
                    "state": {"agentStateARN": "arn:s", "type": state[0], "name": state[1], "startTimestamp": now},
                    "nextState": next_state,
                    "agentAvailabilityState": {"state": state[1], "timeStamp": now},
                    "snapshotTimestamp": now,
                    "localTimestamp": now,
                    "skew": 0,
                    "contacts": [
                        {
                            "contactId": contact_id,
                            "initialContactId": contact_id,
                            "type": "voice",
                            "state": {"type": contact_state, "timestamp": now},
                            "queue": {"queueARN": "arn:q", "queueId": "q", "name": "BasicQueue"},
                            "attributes": {},
                            "initiationMethod": "inbound",
                            "connections": [],
                        }
                        for contact_id, contact_state in contacts.items()
                    ],
                },
                "configuration": CONFIGURATION,
            }
        )
    return updates


def synthetic_log(page: Page, crm_server: Any, library: str, ccphost_url: str, updates: list[Any]) -> list[str]:
    blank = crm_server.add("/blank.html", BLANK)
    html = SYNTHETIC_PAGE.format(library=library_tag(library, ccphost_url), blank=blank)
    page.goto(crm_server.add(f"/synthetic-{library}.html", html))
    return list(page.evaluate("(updates) => window.feed(updates)", updates))


@pytest.mark.skipif(not STREAMS.exists(), reason=OFFICIAL_MISSING)
def test_events_from_random_snapshots_match_the_official_library(ccphost_server, crm_server, new_page):
    updates = [update for seed in range(6) for update in random_day(seed)]
    ours = synthetic_log(new_page(), crm_server, "ccphost", ccphost_server.url, updates)
    official = synthetic_log(new_page(), crm_server, "official", ccphost_server.url, updates)
    assert len(ours) > 1000
    for kind in ("Missed", "Ended", "ACW", "Destroy", "EnqueuedNextState", "ClearedNextState", "Error"):
        assert any(entry.startswith(kind + " ") for entry in ours), kind
    assert ours == official


API_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>API</title>{library}</head>
<body><div id="ccp"></div><script>
  window.errors = {{}};
  window.attempt = (label, f) => {{
    try {{
      f();
      window.errors[label] = "no error";
    }} catch (error) {{
      window.errors[label] = error.name + ": " + error.message;
    }}
  }};
</script></body></html>
"""

# label -> JavaScript that must throw, and words its message must have.
BEFORE_CCP = {
    "no container": ("connect.core.initCCP(null, {ccpUrl: 'https://x.example/ccp-v2/'})", "ValueError", "DOM element"),
    "no params": ("connect.core.initCCP(document.body)", "ValueError", "ccpUrl"),
    "no ccpUrl": ("connect.core.initCCP(document.body, {})", "ValueError", "ccpUrl"),
    "javascript url": ("connect.core.initCCP(document.body, {ccpUrl: 'javascript:alert(1)'})", "ValueError", "http"),
    "bad timeout": (
        "connect.core.initCCP(document.body, {ccpUrl: '/ccp/', ccpLoadTimeout: -5})",
        "ValueError",
        "ccpLoadTimeout",
    ),
    "bad loginPopup": (
        "connect.core.initCCP(document.body, {ccpUrl: '/ccp/', loginPopup: 'yes'})",
        "ValueError",
        "loginPopup",
    ),
    "bad softphone": (
        "connect.core.initCCP(document.body, {ccpUrl: '/ccp/', softphone: {disableRingtone: 'no'}})",
        "ValueError",
        "disableRingtone",
    ),
    "agent callback": ("connect.agent('not a function')", "ValueError", "function"),
    "contact callback": ("connect.contact(42)", "ValueError", "function"),
    "phone number": ("connect.Endpoint.byPhoneNumber(15555550100)", "ValueError", "number"),
    "bus event name": ("connect.core.getEventBus().subscribe('', () => {})", "ValueError", "eventName"),
    "bus callback": ("connect.core.getEventBus().subscribe('agent::refresh', 'x')", "ValueError", "function"),
    "hitch": ("connect.hitch({}, 'not a function')", "ValueError", "function"),
    "agent before CCP": ("new connect.Agent()", "StateError", "not yet initialized"),
    "client before CCP": ("connect.core.getClient()", "StateError", "initCCP"),
    "log level": ("connect.getLog().setLogLevel('LOUD')", "ValueError", "INFO"),
    "subscribe callback": ("connect.ccphost.subscribe('x')", "ValueError", "function"),
    "subscribe after": ("connect.ccphost.subscribe(() => {}, {after: -1})", "ValueError", "whole number"),
    "subscribe before CCP": ("connect.ccphost.subscribe(() => {})", "StateError", "initCCP"),
}

SNAPSHOT = """{
  snapshot: {
    state: {agentStateARN: "arn:s1", type: "routable", name: "Available", startTimestamp: new Date()},
    nextState: null, skew: 0, snapshotTimestamp: new Date(), localTimestamp: Date.now(),
    contacts: [{contactId: "c1", initialContactId: "c1", type: "voice",
                state: {type: "connected", timestamp: new Date()}, queue: {name: "BasicQueue"}, attributes: {},
                connections: [{connectionId: "k1", type: "inbound", initial: true,
                               state: {type: "connected", timestamp: new Date()},
                               endpoint: {type: "phone_number", phoneNumber: "+15555550123"}}]}],
  },
  configuration: {name: "Ada", agentStates: [{agentStateARN: "arn:s1", type: "routable", name: "Available"}],
                  routingProfile: {name: "Basic", queues: [], defaultOutboundQueue: {queueARN: "arn:q"}}},
}"""

PHONE = "connect.Endpoint.byPhoneNumber('+15555550100')"
WITH_AGENT = {
    "setState null": ("agent.setState(null)", "ValueError", "getAgentStates"),
    "setState name only": ("agent.setState({name: 'Available'})", "ValueError", "getAgentStates"),
    "setState callbacks": ("agent.setState(agent.getAgentStates()[0], 'ok')", "ValueError", "callbacks"),
    "setState options": ("agent.setState(agent.getAgentStates()[0], {}, 'now')", "ValueError", "enqueueNextState"),
    "setState before ack": ("agent.setState(agent.getAgentStates()[0])", "StateError", "acknowledge"),
    "contact filter": ("agent.getContacts('sms')", "ValueError", "voice"),
    "connect endpoint": ("agent.connect('+15555550100')", "ValueError", "byPhoneNumber"),
    "connect type": ("agent.connect({type: 'fax', phoneNumber: '+1'})", "ValueError", "phone_number"),
    "connect queue": (f"agent.connect({PHONE}, {{queueARN: 7}})", "ValueError", "queueARN"),
    "connect success": (f"agent.connect({PHONE}, {{success: 1}})", "ValueError", "success"),
    "setConfiguration": ("agent.setConfiguration('x')", "ValueError", "configuration"),
    "getEndpoints": ("agent.getEndpoints([], {})", "ValueError", "success"),
    "agent event": ("agent.onRefresh(null)", "ValueError", "function"),
    "contact event": ("contact.onIncoming('x')", "ValueError", "function"),
    "notifyIssue": ("contact.notifyIssue(5)", "ValueError", "issueCode"),
    "addConnection queue": ("contact.addConnection({type: 'queue'})", "ValueError", "endpointARN"),
    "sendDigits text": ("contact.getInitialConnection().sendDigits('12;DROP')", "ValueError", "digits"),
    "sendDigits number": ("contact.getInitialConnection().sendDigits(123)", "ValueError", "digits"),
    "gone contact": ("new connect.Contact('c404').getState()", "StateError", "c404"),
    "gone connection": ("new connect.Connection('c1', 'k404').getState()", "StateError", "k404"),
}


def test_bad_arguments_throw_clear_errors_without_a_ccp(ccphost_server, crm_server, new_page):
    page = new_page()
    page.goto(crm_server.add("/api.html", API_PAGE.format(library=library_tag("ccphost", ccphost_server.url))))
    for label, (code, _, _) in BEFORE_CCP.items():
        page.evaluate(f"attempt({json.dumps(label)}, () => {code})")
    page.evaluate(f"connect.core.getEventBus().trigger('agent::update', {SNAPSHOT})")
    page.evaluate("connect.agent((agent) => { window.agent = agent; window.contact = agent.getContacts()[0]; })")
    for label, (code, _, _) in WITH_AGENT.items():
        page.evaluate(f"attempt({json.dumps(label)}, () => {code.replace('agent.', 'window.agent.')})")
    errors = page.evaluate("window.errors")
    for label, (_, kind, words) in {**BEFORE_CCP, **WITH_AGENT}.items():
        assert errors[label].startswith(kind + ": "), (label, errors[label])
        assert words in errors[label], (label, errors[label])

    # What works without a CCP: getters from the snapshot, endpoints, formatting.
    assert page.evaluate("window.agent.getName()") == "Ada"
    assert page.evaluate("window.contact.getInitialConnection().getEndpoint().stripPhoneNumber()") == "+15555550123"
    assert page.evaluate("connect.Endpoint.byPhoneNumber('+15555550100', 'Desk').type") == "phone_number"
    assert page.evaluate("connect.sprintf('%s has %d calls (%j) at 100%%', 'Ada', 3.9, {a: 1})") == (
        'Ada has 3 calls ({"a":1}) at 100%'
    )
    assert page.evaluate("connect.hitch({n: 2}, function (a, b) { return this.n * a * b; }, 3)(4)") == 24
    names = [
        "AgentStateType.NOT_ROUTABLE",
        "AgentAvailStates.AFTER_CALL_WORK",
        "EndpointType.PHONE_NUMBER",
        "ConnectionType.OUTBOUND",
        "ContactStateType.CONNECTING",
        "ConnectionStateType.HOLD",
        "ContactType.QUEUE_CALLBACK",
        "EventType.ACK_TIMEOUT",
        "AgentEvents.STATE_CHANGE",
    ]
    enums = page.evaluate("[" + ", ".join(f"connect.{name}" for name in names) + "]")
    assert enums == [
        "not_routable",
        "AfterCallWork",
        "phone_number",
        "outbound",
        "connecting",
        "hold",
        "queue_callback",
        "ack_timeout",
        "agent::state_change",
    ]


def test_logger_formats_keeps_objects_and_downloads_a_json_file(ccphost_server, crm_server, new_page, tmp_path):
    page = new_page()
    page.goto(crm_server.add("/log.html", API_PAGE.format(library=library_tag("ccphost", ccphost_server.url))))
    page.evaluate(
        """() => {
          const log = connect.getLog();
          log.debug("hidden below INFO %s", "x");
          log.info("agent %s took %d calls", "Ada", 12).withObject({queue: "BasicQueue", token: "secret"});
          log.warn("slow CCP: %d ms", 3000.7);
          log.error("accept failed").withException(new TypeError("boom"));
          window.levels = connect.getLog().getLogs().map((e) => e.getLevel());
        }"""
    )
    with page.expect_download() as download:
        page.evaluate("connect.getLog().download({logName: 'agent-log', filterByLogLevel: true})")
    path = tmp_path / "log.json"
    download.value.save_as(path)
    assert download.value.suggested_filename == "agent-log.json"
    entries = json.loads(path.read_text())
    assert [(e["level"], e["text"]) for e in entries] == [
        ("INFO", "agent Ada took 12 calls"),
        ("WARN", "slow CCP: 3000 ms"),
        ("ERROR", "accept failed"),
    ]
    assert entries[0]["objects"] == [{"queue": "BasicQueue", "token": "[redacted]"}]
    assert entries[2]["exception"]["type"] == "TypeError" and entries[2]["exception"]["message"] == "boom"
    assert page.evaluate("window.levels") == ["DEBUG", "INFO", "WARN", "ERROR"]
