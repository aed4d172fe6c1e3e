// The softphone UI: state menu, dial pad, the current contact and its controls.
import { h } from "./dom.js";
import { CONTACT_WORDS, ERROR_WORDS, SYSTEM_WORDS, formatDuration } from "./words.js";

const RINGING = new Set(["incoming", "connecting", "pending"]);
const LIVE_CONNECTION = new Set(["init", "connecting", "connected", "hold"]);

export class CcpView {
  /**
   * @param {HTMLElement} root
   * @param {{api: (method: string, params: object) => Promise<any>, onMute: (muted: boolean) => void}} actions
   */
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    this.snapshot = null;
    this.configuration = null;
    this.muted = false;
    this.endpoints = [];
    this.message = "";
    this.dialed = "";
    window.setInterval(() => this.tick(), 1000);
  }

  setEndpoints(endpoints) {
    this.endpoints = endpoints;
    this.render();
  }

  setMuted(muted) {
    this.muted = muted;
    this.render();
  }

  update(snapshot, configuration) {
    this.snapshot = snapshot;
    this.configuration = configuration;
    this.render();
  }

  showMessage(text) {
    this.message = text;
    this.render();
  }

  /** Call the API; a failure is shown in words, never thrown away. */
  run(method, params) {
    this.message = "";
    return this.actions.api(method, params).catch((err) => {
      this.showMessage(err && err.message ? err.message : `${method} failed.`);
    });
  }

  skew() {
    return this.snapshot && typeof this.snapshot.skew === "number" ? this.snapshot.skew : 0;
  }

  since(date) {
    return date instanceof Date ? formatDuration(Date.now() + this.skew() - date.getTime()) : "";
  }

  tick() {
    for (const el of this.root.querySelectorAll("[data-since]")) {
      el.textContent = this.since(new Date(Number(el.dataset.since)));
    }
  }

  render() {
    if (!this.snapshot || !this.configuration) return;
    const focusKey = document.activeElement && document.activeElement.dataset.key;
    const contacts = this.snapshot.contacts || [];
    const contact = contacts.find((c) => c.type === "voice" || c.type === "queue_callback") || null;
    this.root.replaceChildren(
      this.renderState(),
      this.renderAlert(),
      contact ? this.renderContact(contact) : this.renderDialPad(),
    );
    if (focusKey) {
      const again = this.root.querySelector(`[data-key="${focusKey}"]`);
      if (again) again.focus();
    }
  }

  renderState() {
    const { state, nextState } = this.snapshot;
    const states = this.configuration.agentStates || [];
    const known = states.some((s) => s.name === state.name);
    const select = h(
      "select",
      { id: "state-select", "aria-label": "Agent status", dataset: { key: "state" }, onchange: (e) => this.setState(e) },
      known ? null : h("option", { value: "", selected: true, disabled: true }, this.stateWords(state)),
      states.map((s) => h("option", { value: s.name, selected: s.name === state.name }, s.name)),
    );
    const started = state.startTimestamp instanceof Date ? state.startTimestamp.getTime() : null;
    return h(
      "div",
      { class: `agent-state state-${state.type}` },
      select,
      h("span", { id: "state-duration", class: "duration", dataset: started ? { since: String(started) } : {} }, started ? this.since(state.startTimestamp) : ""),
      nextState ? h("div", { class: "next-state" }, `Next: ${nextState.name}`) : null,
    );
  }

  stateWords(state) {
    return SYSTEM_WORDS[state.name] || (state.type === "error" ? "Error" : state.name);
  }

  setState(event) {
    const state = (this.configuration.agentStates || []).find((s) => s.name === event.target.value);
    if (state) this.run("putAgentState", { state, enqueueNextState: (this.snapshot.contacts || []).length > 0 });
  }

  renderAlert() {
    const { state } = this.snapshot;
    const text = this.message || (state.type === "error" ? ERROR_WORDS[state.name] || ERROR_WORDS.Default : "");
    return h("div", { id: "ccp-alert", class: text ? "alert" : "alert empty", role: "alert" }, text);
  }

  renderDialPad() {
    const input = h("input", {
      id: "dial-number",
      type: "tel",
      inputmode: "tel",
      autocomplete: "off",
      placeholder: "+1 555 0100",
      "aria-label": "Phone number",
      value: this.dialed,
      dataset: { key: "dial" },
      oninput: (e) => {
        this.dialed = e.target.value;
      },
    });
    const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"].map((d) =>
      h("button", { type: "button", class: "key", dataset: { key: `key${d}` }, onclick: () => this.press(input, d) }, d),
    );
    const form = h(
      "form",
      { class: "dial-pad", onsubmit: (e) => this.dial(e) },
      h("label", { for: "dial-number" }, "Number"),
      input,
      h("div", { class: "keys" }, keys),
      h("button", { type: "submit", id: "dial-button", class: "primary", dataset: { key: "call" } }, "Call"),
    );
    return form;
  }

  press(input, digit) {
    this.dialed = `${input.value}${digit}`;
    input.value = this.dialed;
  }

  dial(event) {
    event.preventDefault();
    const phoneNumber = this.dialed.replace(/[\s()-]/g, "");
    if (!/^\+?[0-9]{3,15}$/.test(phoneNumber)) {
      this.showMessage("Enter a phone number in international format, like +15550100.");
      return;
    }
    const number = phoneNumber.startsWith("+") ? phoneNumber : `+${phoneNumber}`;
    const queue = (this.configuration.routingProfile || {}).defaultOutboundQueue || {};
    const endpoint = { type: "phone_number", phoneNumber: number, name: number, endpointARN: null };
    this.run("createOutboundContact", { endpoint, queueARN: queue.queueARN }).then(() => {
      this.dialed = "";
    });
  }

  renderContact(contact) {
    const connections = contact.connections || [];
    const agentConnection = connections.find((c) => c.type === "agent");
    const initial = connections.find((c) => c.initial);
    const others = connections.filter((c) => c.type !== "agent" && !c.initial && LIVE_CONNECTION.has(c.state.type));
    const type = contact.state.type;
    const heading = RINGING.has(type)
      ? contact.type === "queue_callback"
        ? "Incoming callback"
        : "Incoming call"
      : contact.initiationMethod === "outbound" && initial && initial.state.type === "connecting"
        ? "Dialing"
        : CONTACT_WORDS[type] || type;
    const started = contact.state.timestamp instanceof Date ? contact.state.timestamp.getTime() : null;
    return h(
      "section",
      { class: `contact contact-${type}`, id: "contact", dataset: { contactId: contact.contactId }, "aria-label": "Current contact" },
      h("h2", { class: "contact-heading" }, heading, " ", h("span", { class: "duration", dataset: started ? { since: String(started) } : {} })),
      h("div", { class: "contact-party" }, initial ? this.party(initial) : ""),
      contact.queue ? h("div", { class: "contact-queue" }, `Queue: ${contact.queue.name}`) : null,
      this.renderAttributes(contact),
      others.map((c) => this.renderThirdParty(contact, c)),
      this.renderControls(contact, agentConnection, initial, others),
    );
  }

  party(connection) {
    const endpoint = connection.endpoint || {};
    const text = endpoint.phoneNumber || endpoint.name || "Customer";
    return connection.state.type === "hold" ? `${text} (on hold)` : text;
  }

  renderAttributes(contact) {
    const entries = Object.values(contact.attributes || {});
    if (!entries.length) return null;
    return h(
      "dl",
      { class: "attributes" },
      entries.slice(0, 4).map((a) => [h("dt", {}, a.name), h("dd", { title: a.value }, a.value)]),
    );
  }

  renderThirdParty(contact, connection) {
    return h(
      "div",
      { class: "third-party" },
      h("span", {}, this.party(connection)),
      h("button", { type: "button", onclick: () => this.run("destroyConnection", { contactId: contact.contactId, connectionId: connection.connectionId }) }, "Drop"),
    );
  }

  renderControls(contact, agentConnection, initial, others) {
    const id = contact.contactId;
    const button = (label, key, method, params, cls = "") =>
      h("button", { type: "button", class: cls, dataset: { key }, onclick: () => this.run(method, { contactId: id, ...params }) }, label);
    const type = contact.state.type;
    if (RINGING.has(type)) {
      return h("div", { class: "controls" }, button("Accept", "accept", "acceptContact", {}, "primary"), button("Reject", "reject", "rejectContact", {}, "danger"));
    }
    if (type === "ended" || type === "missed" || type === "error" || type === "rejected") {
      return h("div", { class: "controls" }, button(type === "ended" ? "Clear contact" : "Close", "clear", "clearContact", {}, "primary"));
    }
    const controls = [];
    if (initial && LIVE_CONNECTION.has(initial.state.type)) {
      const onHold = initial.state.type === "hold";
      controls.push(button(onHold ? "Resume" : "Hold", "hold", onHold ? "resumeConnection" : "holdConnection", { connectionId: initial.connectionId }));
    }
    controls.push(h("button", { type: "button", dataset: { key: "mute" }, "aria-pressed": String(this.muted), onclick: () => this.actions.onMute(!this.muted) }, this.muted ? "Unmute" : "Mute"));
    if (others.length) {
      controls.push(button("Swap", "swap", "toggleActiveConnections", { connectionId: agentConnection ? agentConnection.connectionId : null }));
      controls.push(button("Join", "join", "conferenceConnections", {}));
    }
    const hangUp = agentConnection
      ? button("End call", "hangup", "destroyConnection", { connectionId: agentConnection.connectionId }, "danger")
      : button("End call", "hangup", "destroyContact", {}, "danger");
    return h("div", { class: "controls" }, controls, this.renderTransfer(id), this.renderKeypad(contact, initial), hangUp);
  }

  renderTransfer(contactId) {
    if (!this.endpoints.length) return null;
    const select = h(
      "select",
      { id: "quick-connect", "aria-label": "Quick connect", dataset: { key: "qc" } },
      this.endpoints.map((e, i) => h("option", { value: String(i) }, e.name)),
    );
    const transfer = () => {
      const endpoint = this.endpoints[Number(select.value)];
      if (endpoint) this.run("createAdditionalConnection", { contactId, endpoint });
    };
    return h("div", { class: "transfer" }, select, h("button", { type: "button", dataset: { key: "transfer" }, onclick: transfer }, "Transfer"));
  }

  renderKeypad(contact, initial) {
    if (!initial) return null;
    const input = h("input", { id: "digits", "aria-label": "Digits to send", placeholder: "Digits", inputmode: "tel", size: 6, dataset: { key: "digits" } });
    const send = (e) => {
      e.preventDefault();
      if (!input.value) return;
      this.run("sendDigits", { contactId: contact.contactId, connectionId: initial.connectionId, digits: input.value });
      input.value = "";
    };
    return h("form", { class: "keypad", onsubmit: send }, input, h("button", { type: "submit", dataset: { key: "send-digits" } }, "Send"));
  }
}
