// ccphost's agent page: embed the instance's CCP with the options rendered by the server and,
// when the CCP is Amazon's own, forward what Streams sees to ccphost (README: "Events beyond
// the CCP"), which records and relays it like the events of hosted instances.
import { reconnectDelay } from "./ccp/socket.js";

const options = JSON.parse(document.getElementById("init-ccp-options").textContent);
const pageOptions = JSON.parse(document.getElementById("agent-page-options").textContent);
const container = document.getElementById("ccp-container");
const log = document.getElementById("agent-log");
function record(line) {
  log.textContent += `${new Date().toISOString()} ${line}\n`;
}
const streams = window.connect;
streams.core.initCCP(container, options);
streams.core.getEventBus().subscribe(streams.EventType.ACKNOWLEDGE, () => {
  if (!log.dataset.acknowledged) record("acknowledge");
  log.dataset.acknowledged = "true";
});
streams.agent((agent) => {
  record(`agent ${agent.getName()}`);
  agent.onStateChange((change) => record(`state ${change.oldState} -> ${change.newState}`));
});
streams.contact((contact) => record(`contact ${contact.getContactId()}`));

/** Forward each agent::update (without the fields that change on every update) once. */
function forwardStreamsEvents(path) {
  let socket = null;
  let latest = null;
  let sent = null;
  let retries = 0;
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const flush = () => {
    if (!latest || !socket || socket.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify({ type: "forward", agentData: latest });
    if (text === sent) return;
    socket.send(text);
    sent = text;
  };
  const open = () => {
    socket = new WebSocket(`${scheme}//${window.location.host}${path}`);
    socket.onopen = () => {
      retries = 0;
      sent = null;
      flush();
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "event") record(`ccphost event #${frame.seq} ${frame.stream} ${frame.eventType}`);
      if (frame.type === "error") record(`ccphost: ${frame.message}`);
    };
    socket.onclose = () => {
      setTimeout(open, reconnectDelay(retries));
      retries += 1;
    };
  };
  streams.core.getEventBus().subscribe(streams.AgentEvents.UPDATE, (data) => {
    const { localTimestamp, skew, snapshotTimestamp, ...snapshot } = data.snapshot;
    latest = { snapshot, configuration: data.configuration };
    flush();
  });
  open();
}
if (pageOptions.forwardEventsPath) forwardStreamsEvents(pageOptions.forwardEventsPath);
