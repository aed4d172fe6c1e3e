// ccphost's CCP page: speaks Amazon's CCP postMessage protocol to its parent (see
// shared/docs/ccp-wire-protocol.md) and relays API requests over its WebSocket.

const config = JSON.parse(document.getElementById("ccp-config").textContent);
const statusEl = document.getElementById("ccp-status");
const framed = window.parent !== window;
const ownOrigin = window.location.origin;
const allowedParents = new Set([ownOrigin, ...config.approvedOrigins]);

/** The embedding page's origin, as the browser reports it; null when unknown. */
function findParentOrigin() {
  if (!framed) return null;
  const ancestors = window.location.ancestorOrigins;
  if (ancestors && ancestors.length > 0) return ancestors[0];
  try {
    return document.referrer ? new URL(document.referrer).origin : null;
  } catch {
    return null;
  }
}

const parentOrigin = findParentOrigin();
const parentApproved = framed && parentOrigin !== null && allowedParents.has(parentOrigin);

function setStatus(text) {
  statusEl.textContent = text;
}

/** Post one protocol message to the parent, only ever at its exact approved origin. */
function post(event, data) {
  if (!parentApproved) return;
  window.parent.postMessage({ event, data }, parentOrigin);
}

const ackId = crypto.randomUUID();
const acknowledge = () => post("acknowledge", { id: ackId });

let socket = null;
let latest = null;
let retries = 0;
const pending = new Map();

function reviveDates(value, key) {
  return typeof value === "string" && /(Timestamp|timestamp|timeStamp)$/.test(key) ? new Date(value) : value;
}

function openSocket() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${window.location.host}${config.socketPath}`);
  socket.addEventListener("open", () => {
    retries = 0;
  });
  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data, function (key, value) {
      return reviveDates(value, key);
    });
    receiveFrame(frame);
  });
  socket.addEventListener("close", (closed) => {
    if (closed.code === 4401 || closed.code === 4404) return;
    setStatus("Reconnecting…");
    const delay = Math.min(30000, 500 * 2 ** retries) * (0.5 + Math.random() / 2);
    retries += 1;
    window.setTimeout(openSocket, delay);
  });
}

function receiveFrame(frame) {
  if (frame.type === "auth_fail") {
    setStatus("Not signed in");
    post("auth_fail", null);
    return;
  }
  if (frame.type === "hello") {
    setStatus(`Signed in as ${frame.username}`);
    return;
  }
  if (frame.type === "snapshot") {
    if (latest && frame.version <= latest.version) return;
    latest = frame;
    post("agent::update", { snapshot: frame.snapshot, configuration: frame.configuration });
    return;
  }
  if (frame.requestId !== undefined && pending.has(frame.requestId)) {
    pending.delete(frame.requestId);
    const err = frame.err ? JSON.stringify(frame.err) : null;
    post("api_response", { event: "api_response", requestId: frame.requestId, data: frame.data ?? null, err });
  }
}

function sendRequest(request) {
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    const err = JSON.stringify({ type: "ConnectionLost", message: "The CCP is not connected.", statusCode: 503 });
    post("api_response", { event: "api_response", requestId: request.requestId, data: null, err });
    return;
  }
  pending.set(request.requestId, request);
  socket.send(JSON.stringify({ requestId: request.requestId, method: request.method, params: request.params }));
}

const handlers = {
  synchronize: acknowledge,
  configure(data) {
    post("configuration::configure", data);
  },
  broadcast(data) {
    if (!data || typeof data.event !== "string") return;
    post(data.event, data.data);
    if (data.event === "mute") post("agent::mute_toggle", { muted: Boolean(data.data && data.data.mute) });
  },
  api_request(data) {
    if (data && typeof data.method === "string") sendRequest(data);
  },
};

window.addEventListener("message", (message) => {
  if (!parentApproved || message.source !== window.parent || message.origin !== parentOrigin) return;
  const payload = message.data;
  if (!payload || typeof payload.event !== "string") return;
  const handler = handlers[payload.event];
  if (handler) handler(payload.data);
});

if (framed && !parentApproved) {
  setStatus("This page is not approved to embed the CCP.");
} else {
  acknowledge();
  // A reload of this page inside the same host: ask the host to send its options again.
  if (window.sessionStorage.getItem("ccphost.loaded") === config.alias) post("request_configure", null);
  window.sessionStorage.setItem("ccphost.loaded", config.alias);
  openSocket();
}
