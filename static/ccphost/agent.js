// ccphost's agent page: embed the instance's CCP with the options rendered by the server.
const options = JSON.parse(document.getElementById("init-ccp-options").textContent);
const container = document.getElementById("ccp-container");
const log = document.getElementById("agent-log");
function record(line) {
  log.textContent += `${new Date().toISOString()} ${line}\n`;
}
window.connect.core.initCCP(container, options);
window.connect.core.getEventBus().subscribe(window.connect.EventType.ACKNOWLEDGE, () => record("acknowledge"));
window.connect.agent((agent) => {
  record(`agent ${agent.getName()}`);
  agent.onStateChange((change) => record(`state ${change.oldState} -> ${change.newState}`));
});
window.connect.contact((contact) => record(`contact ${contact.getContactId()}`));
