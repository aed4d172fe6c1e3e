// The sample CRM: embeds the CCP through ccphost's connect-streams.js, pops the caller's
// record from the incoming contact, and shows the events it sees.
import { CUSTOMERS } from "./customers.js";

const { ccphost, alias } = window.CRM_CONFIG;
const feed = document.getElementById("event-feed");
document.getElementById("readme-link").href = `${ccphost}/`;

function record(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  feed.prepend(item);
  while (feed.children.length > 100) feed.lastChild.remove();
}

function fill(list, entries) {
  list.replaceChildren(
    ...entries.flatMap(([key, value]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = key;
      dd.textContent = String(value);
      return [dt, dd];
    }),
  );
}

function popCustomer(contact) {
  const attributes = contact.getAttributes();
  const initial = contact.getInitialConnection();
  const number = (attributes.customerNumber && attributes.customerNumber.value) ||
    (initial && initial.getEndpoint().phoneNumber) || "";
  const customer = CUSTOMERS[number];
  document.getElementById("customer-name").textContent = customer ? customer.name : `Unknown caller ${number}`;
  fill(document.getElementById("customer-details"), customer ? Object.entries({ phone: number, ...customer }) : [["phone", number]]);
  fill(document.getElementById("contact-attributes"), Object.values(attributes).map((a) => [a.name, a.value]));
}

function loadLibrary() {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = `${ccphost}/static/ccphost/connect-streams.js`;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`Could not load connect-streams.js from ${ccphost}`));
    document.head.append(script);
  });
}

await loadLibrary();
const connect = window.connect;
connect.core.initCCP(document.getElementById("ccp"), {
  ccpUrl: `${ccphost}/connect/${alias}/ccp-v2/`,
  loginPopup: true,
  loginPopupAutoClose: true,
  loginUrl: `${ccphost}/connect/${alias}/login/`,
  softphone: { allowFramedSoftphone: true },
});
connect.agent((agent) => {
  document.getElementById("agent-line").textContent = `Signed in as ${agent.getName()}`;
  record(`agent ${agent.getName()} is ${agent.getState().name}`);
  agent.onStateChange((change) => record(`state ${change.oldState} → ${change.newState}`));
});
connect.contact((contact) => {
  record(`contact ${contact.getContactId()} (${contact.getType()})`);
  contact.onIncoming(() => popCustomer(contact));
  contact.onConnecting(() => popCustomer(contact));
  contact.onConnected(() => record(`connected ${contact.getContactId()}`));
  contact.onEnded(() => record(`ended ${contact.getContactId()}`));
});
if (connect.ccphost && connect.ccphost.subscribe) {
  connect.ccphost.subscribe((event) => record(`${event.type} #${event.seq}`));
}
