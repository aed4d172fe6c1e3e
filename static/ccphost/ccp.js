// ccphost's CCP page: the softphone UI, speaking Amazon's CCP postMessage protocol to its
// parent (shared/docs/ccp-wire-protocol.md) and talking to ccphost over one WebSocket.
import { ParentChannel } from "./ccp/parent.js";
import { Ringtone } from "./ccp/ringtone.js";
import { CLOSE_TOO_MANY_FRAMES, CcpSocket } from "./ccp/socket.js";
import { CcpView } from "./ccp/ui.js";

const config = JSON.parse(document.getElementById("ccp-config").textContent);
const statusEl = document.getElementById("ccp-status");
const body = document.getElementById("ccp-body");
const parent = new ParentChannel(config.approvedOrigins);
const ackId = crypto.randomUUID();

function setStatus(text) {
  statusEl.textContent = text;
}

function showSignIn() {
  const next = encodeURIComponent(window.location.pathname);
  const link = document.createElement("a");
  link.href = `${config.loginUrl}?next=${next}`;
  link.textContent = "Sign in";
  link.id = "sign-in";
  if (parent.framed) link.target = "_blank";
  body.replaceChildren(link);
  if (parent.framed) offerStorageAccess();
}

/** When this frame last reloaded itself to take storage access (its name survives reloads;
 * storage may be blocked here). */
const lastStorageAccessReload = Number((window.name.match(/^ccphost-storage-access:(\d+)$/) || [])[1] || 0);

/**
 * A browser that blocks third-party cookies hides the agent's session from this frame even
 * after signing in through the popup. Tell the agent, and let one click grant access
 * (the Storage Access API needs a click inside the frame).
 */
async function offerStorageAccess() {
  if (!document.hasStorageAccess || (await document.hasStorageAccess())) return;
  // Allowed before (an earlier frame of this site): take it without a click, reload once.
  const permission = navigator.permissions
    ? await navigator.permissions.query({ name: "storage-access" }).catch(() => null)
    : null;
  if (permission && permission.state === "granted" && Date.now() - lastStorageAccessReload > 30000) {
    try {
      await document.requestStorageAccess();
      window.name = `ccphost-storage-access:${Date.now()}`; // survives the reload, unlike this page
      window.location.reload();
      return;
    } catch {
      // not allowed yet: the agent must click
    }
  }
  const note = document.createElement("p");
  note.id = "storage-access-note";
  note.textContent =
    "Your browser keeps ccphost's sign-in from this page. Sign in, then click Allow; " +
    "or allow third-party cookies for this site in your browser settings.";
  const allow = document.createElement("button");
  allow.type = "button";
  allow.id = "storage-access";
  allow.textContent = "Allow ccphost here";
  allow.addEventListener("click", async () => {
    try {
      await document.requestStorageAccess();
      window.location.reload();
    } catch {
      note.textContent =
        "The browser refused. Sign in in the popup first, then click Allow again, or allow " +
        "third-party cookies for this site.";
    }
  });
  body.append(note, allow);
}

function isRinging(contact) {
  if (contact.type === "queue_callback") return contact.state.type === "incoming";
  return contact.type === "voice" && ["incoming", "connecting"].includes(contact.state.type) &&
    contact.initiationMethod !== "outbound";
}

function start() {
  const socket = new CcpSocket(config.socketPath);
  const ringtone = new Ringtone({
    url: config.ringtoneUrl || config.defaultRingtoneUrl,
    disabled: config.disableRingtone,
    lockName: `ccphost-ringtone-${config.alias}-${config.username}`,
  });
  let configuration = null;
  let micRequested = false;
  let endpointsLoaded = false;
  let lostConnection = false;

  const setMuted = (muted) => {
    view.setMuted(muted);
    parent.post("agent::mute_toggle", { muted });
  };
  const view = new CcpView(body, {
    api: (method, params) => socket.request(method, params),
    onMute: setMuted,
  });

  /** The agent's quick connects, for transfer and conference. */
  function loadQuickConnects() {
    const queues = ((configuration && configuration.routingProfile) || {}).queues || [];
    const queueARNs = queues.map((q) => q.queueARN).filter(Boolean);
    socket.request("getEndpoints", { queueARNs, nextToken: null, maxResults: 100 }).then(
      (data) => view.setEndpoints((data && data.endpoints) || []),
      () => {
        endpointsLoaded = false; // try again with the next snapshot
      },
    );
  }

  function requestMicrophone() {
    if (micRequested || !configuration || !configuration.softphoneEnabled) return;
    micRequested = true;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
    navigator.mediaDevices.getUserMedia({ audio: true }).then(
      (stream) => stream.getTracks().forEach((track) => track.stop()),
      (error) => {
        console.error("ccphost CCP: microphone_not_shared", error);
        view.showMessage("Your microphone is not shared with the CCP: allow it in your browser to take calls.");
        parent.post("agent::softphone_error", {
          errorType: "microphone_not_shared",
          errorMessage: "Your microphone is not enabled in your browser.",
          endPointUrl: null,
        });
      },
    );
  }

  socket.addEventListener("hello", (e) => setStatus(`Signed in as ${e.detail.username}`));
  socket.addEventListener("snapshot", (e) => {
    const frame = e.detail;
    const snapshot = frame.snapshot;
    snapshot.localTimestamp = Date.now();
    snapshot.skew = snapshot.snapshotTimestamp instanceof Date ? snapshot.snapshotTimestamp.getTime() - snapshot.localTimestamp : 0;
    configuration = frame.configuration;
    view.update(snapshot, configuration);
    parent.post("agent::update", { snapshot, configuration });
    ringtone.update((snapshot.contacts || []).some(isRinging));
    requestMicrophone();
    if (!endpointsLoaded) {
      endpointsLoaded = true;
      loadQuickConnects();
    }
  });
  socket.addEventListener("auth_fail", () => {
    setStatus("Not signed in");
    showSignIn();
    parent.post("auth_fail");
  });
  socket.addEventListener("access_denied", () => {
    setStatus("Not an agent of this instance");
    parent.post("access_denied");
  });
  socket.addEventListener("lost", (e) => {
    lostConnection = true;
    setStatus(
      e.detail.code === CLOSE_TOO_MANY_FRAMES ? "Too many requests: reconnecting in a few seconds…" : "Reconnecting…",
    );
    parent.post("agent::websocket_connection_lost");
  });
  socket.addEventListener("connected", () => {
    if (lostConnection) parent.post("agent::websocket_connection_gained");
    lostConnection = false;
  });

  // Signed out: no more acknowledgements, so the host sees the CCP gone and signs in again.
  parent.on("synchronize", () => signedOut || parent.post("acknowledge", { id: ackId }));
  parent.on("configure", (data) => {
    if (data && data.softphone) ringtone.configure(data.softphone);
    parent.post("configuration::configure", data);
  });
  parent.on("broadcast", (data) => {
    if (!data || typeof data.event !== "string") return;
    parent.post(data.event, data.data);
    if (data.event === "mute") setMuted(Boolean(data.data && data.data.mute));
    if (data.event.startsWith("contact::accepted")) ringtone.update(false);
  });
  parent.on("api_request", (request) => {
    if (!request || typeof request.method !== "string") return;
    const reply = (data, err) =>
      parent.post("api_response", { event: "api_response", requestId: request.requestId, data, err });
    socket.request(request.method, request.params || {}).then(
      (data) => reply(data, null),
      (err) => reply(null, JSON.stringify(err)),
    );
  });
  parent.on("master_request", (request) => {
    if (!request) return;
    parent.post("master_response", { masterId: ackId, isMaster: true, topic: request.topic });
  });
  parent.on("terminate", () => socket.close());
  // ccphost's addition to the protocol: a token for the page's own event subscription
  // (connect.ccphost.subscribe), fetched with this frame's session.
  parent.on("ccphost::events_token_request", async () => {
    const response = await fetch(config.eventsTokenUrl, { credentials: "same-origin" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      parent.post("ccphost::events_token", { error: body.error || `HTTP ${response.status}` });
      return;
    }
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    parent.post("ccphost::events_token", { ...body, url: `${scheme}//${window.location.host}${body.path}` });
  });

  document.getElementById("sign-out").addEventListener("click", () => signOut(socket));
  document.getElementById("sign-out").hidden = false;
  socket.open();
  parent.post("acknowledge", { id: ackId });
  // A reload inside the same host: ask the host to send its configuration again.
  if (window.sessionStorage.getItem("ccphost.loaded") === config.alias) parent.post("request_configure");
  window.sessionStorage.setItem("ccphost.loaded", config.alias);
}

let signedOut = false;

async function signOut(socket) {
  const response = await fetch(config.logoutUrl, {
    method: "POST",
    headers: { "X-CSRFToken": config.csrfToken, Accept: "application/json" },
    credentials: "same-origin",
  });
  if (!response.ok) {
    setStatus("Sign-out failed");
    return;
  }
  signedOut = true;
  socket.close();
  setStatus("Signed out");
  showSignIn();
  parent.post("terminated");
}

if (parent.framed && !parent.approved) {
  setStatus("This page is not approved to embed the CCP.");
} else if (!config.signedIn) {
  // Like Amazon's CCP: no acknowledge until the agent is signed in; the host opens its
  // login popup and reloads this frame until it acknowledges.
  setStatus("Not signed in");
  showSignIn();
  parent.post("auth_fail");
} else {
  start();
}
