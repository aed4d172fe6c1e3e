"""A CRM page that records every Streams callback and getter, for either host library:
ccphost's connect-streams.js or the official amazon-connect-streams from npm."""

from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

STREAMS = Path(__file__).resolve().parent / "vendor/node_modules/amazon-connect-streams/release/connect-streams.js"
OFFICIAL_MISSING = "run `make test-deps` for the official amazon-connect-streams"

# Recorded in window.log: every agent and contact callback, in order, with what the getters
# said at that moment. window.results: the success/failure callbacks of API calls.
# window.getters(): the whole getter surface at one moment.
RECORDER = """
window.log = [];
window.results = [];
const note = (...parts) => window.log.push(parts.join(" "));
const safe = (f) => { try { return f(); } catch (error) { return "throws " + error.name; } };
const calls = (name) => ({
  success: () => window.results.push(name + " ok"),
  failure: (err) => window.results.push(name + " failed " + (typeof err === "string" ? err : JSON.stringify(err))),
});
window.calls = calls;
const conn = (x) => x && {
  type: x.getType(), state: x.getState().type, active: x.isActive(), connected: x.isConnected(),
  connecting: x.isConnecting(), hold: x.isOnHold(), initial: x.isInitialConnection(),
  phone: x.getEndpoint().phoneNumber, endpointType: x.getEndpoint().type, mute: x.isMute(),
  media: x.getMediaType(), duration: x.getStateDuration() >= 0, contactId: x.getContactId() !== "",
  connectionId: typeof x.getConnectionId(),
};
window.getters = () => {
  const agent = window.agentApi;
  return {
    agent: {
      state: [agent.getState().name, agent.getState().type], name: agent.getName(),
      extension: agent.getExtension() || null, softphone: agent.isSoftphoneEnabled(),
      permissions: Array.isArray(agent.getPermissions()), states: agent.getAgentStates().map((s) => s.name),
      profile: agent.getRoutingProfile().name, countries: agent.getDialableCountries(),
      duration: agent.getStateDuration() >= 0, next: agent.getNextState() || null,
      contacts: agent.getContacts().length,
      voice: agent.getContacts(connect.ContactType.VOICE).length,
      chat: agent.getContacts(connect.ContactType.CHAT).length,
      snapshot: agent.toSnapshot().getState().name, queues: agent.getAllQueueARNs().length,
    },
    contacts: agent.getContacts().map((c) => ({
      type: c.getType(), state: c.getState().type, inbound: c.isInbound(), connected: c.isConnected(),
      softphone: c.isSoftphoneCall(), queue: c.getQueue() && c.getQueue().name, attributes: c.getAttributes(),
      original: c.getOriginalContactId() === c.getContactId(), duration: c.getStateDuration() >= 0,
      initial: conn(c.getInitialConnection()), activeInitial: conn(c.getActiveInitialConnection()),
      agentConnection: conn(c.getAgentConnection()), thirdParty: c.getThirdPartyConnections().map(conn),
      single: conn(c.getSingleActiveThirdPartyConnection()), all: c.getConnections().map(conn),
      snapshot: c.toSnapshot().getState().type,
    })),
  };
};
connect.agent((agent) => {
  window.agentApi = agent;
  note("agent", agent.getName(), agent.getState().name);
  agent.onStateChange((change) => note("stateChange", change.oldState, change.newState));
  agent.onRoutable((a) => note("routable", a.getState().name));
  agent.onNotRoutable((a) => note("notRoutable", a.getState().name));
  agent.onOffline((a) => note("offline", a.getState().name));
  agent.onError((a) => note("agentError", a.getState().name));
  agent.onAfterCallWork((a) => note("afterCallWork", a.getState().name));
  agent.onMuteToggle((data) => note("muteToggle", data.muted));
});
connect.contact((contact) => {
  window.contactApi = contact;
  note("contact", contact.getType(), contact.getState().type, contact.isInbound(),
       JSON.stringify(contact.getAttributes()), safe(() => contact.getQueue().name));
  const events = [
    "Incoming", "Pending", "Connecting", "Accepted", "Connected", "Missed", "Ended", "ACW", "Error", "Destroy",
  ];
  for (const name of events) {
    contact["on" + name](() => note(name.toLowerCase(), safe(() => contact.getState().type)));
  }
});
"""

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CRM</title>{library}</head>
<body><div id="ccp" style="width: 320px; height: 480px"></div>
<script>
  connect.core.initCCP(document.getElementById("ccp"), {{
    ccpUrl: "{ccphost}/connect/{alias}/ccp-v2/",
    loginPopup: true,
    loginPopupAutoClose: true,
    loginUrl: "{ccphost}/connect/{alias}/login/",
    ccpAckTimeout: 1000, ccpSynTimeout: 500, ccpLoadTimeout: 2000,
    softphone: {{ allowFramedSoftphone: true }},
  }});
{recorder}
</script></body></html>
"""


def library_tag(library: str, ccphost_url: str) -> str:
    if library == "official":
        return f"<script>{STREAMS.read_text()}</script>"
    return f'<script src="{ccphost_url}/static/ccphost/connect-streams.js"></script>'


def crm_page(library: str, ccphost_url: str, alias: str = "acme") -> str:
    return PAGE.format(library=library_tag(library, ccphost_url), recorder=RECORDER, ccphost=ccphost_url, alias=alias)


def sign_in_through_popup(page: Page, url: str, username: str, password: str) -> None:
    """Open the CRM page at ``url``; sign in in the login popup its host library opens."""
    with page.expect_popup(timeout=15_000) as opened:
        page.goto(url)
    popup = opened.value
    popup.wait_for_load_state()
    popup.fill("#id_username", username)
    popup.fill("#id_password", password)
    popup.click("button[type=submit]")
    popup.wait_for_event("close", timeout=15_000)


def wait_entry(page: Page, entry: str, count: int = 1, timeout: int = 15_000) -> None:
    """Wait until the recorder's log holds ``entry`` ``count`` times."""
    try:
        page.wait_for_function(
            "([entry, count]) => window.log.filter((e) => e === entry).length >= count",
            arg=[entry, count],
            timeout=timeout,
        )
    except PlaywrightError as error:
        raise AssertionError(f"{entry!r} not seen: {page.evaluate('[window.log, window.results]')}") from error


def choose_state(page: Page, name: str) -> None:
    """The agent picks a state from the page, through the library's Agent.setState."""
    page.evaluate(
        "(name) => agentApi.setState(agentApi.getAgentStates().find((s) => s.name === name), calls('setState'))", name
    )
