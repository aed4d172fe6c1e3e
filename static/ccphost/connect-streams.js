// connect-streams.js: ccphost's host library, a small implementation of the Amazon Connect
// Streams API over the CCP postMessage protocol (shared/docs/ccp-wire-protocol.md).
// Classic script: defines window.connect. As an ES module: import connect-streams.mjs.
(function (global) {
  "use strict";

  const EventType = Object.freeze({
    ACKNOWLEDGE: "acknowledge",
    ACK_TIMEOUT: "ack_timeout",
    API_REQUEST: "api_request",
    API_RESPONSE: "api_response",
    AUTH_FAIL: "auth_fail",
    ACCESS_DENIED: "access_denied",
    CLOSE: "close",
    CONFIGURE: "configure",
    LOG: "log",
    MASTER_REQUEST: "master_request",
    MASTER_RESPONSE: "master_response",
    SYNCHRONIZE: "synchronize",
    TERMINATE: "terminate",
    TERMINATED: "terminated",
    SEND_LOGS: "send_logs",
    RELOAD_AGENT_CONFIGURATION: "reload_agent_configuration",
    BROADCAST: "broadcast",
    API_METRIC: "api_metric",
    CLIENT_METRIC: "client_metric",
    MUTE: "mute",
    REQUEST_CONFIGURE: "request_configure",
    INIT: "init",
  });

  /** A tiny publish/subscribe bus, per event name, with "*" for every event. */
  class EventBus {
    constructor() {
      this.subscribers = new Map();
    }
    subscribe(eventName, callback) {
      if (typeof eventName !== "string" || !eventName) throw new TypeError("subscribe: eventName must be a non-empty string");
      if (typeof callback !== "function") throw new TypeError("subscribe: callback must be a function");
      if (!this.subscribers.has(eventName)) this.subscribers.set(eventName, new Set());
      this.subscribers.get(eventName).add(callback);
      return { unsubscribe: () => this.unsubscribe(eventName, callback) };
    }
    unsubscribe(eventName, callback) {
      const set = this.subscribers.get(eventName);
      if (set) set.delete(callback);
    }
    trigger(eventName, data) {
      for (const name of [eventName, "*"]) {
        for (const callback of [...(this.subscribers.get(name) || [])]) {
          try {
            callback(data, eventName);
          } catch (error) {
            console.error(`connect-streams: a ${eventName} subscriber threw`, error);
          }
        }
      }
    }
  }

  const bus = new EventBus();
  const core = { bus, iframe: null, ccpOrigin: null, initialized: false, ackTimer: null, loadTimer: null };
  const agentCallbacks = [];
  const contactCallbacks = [];

  function send(event, data) {
    if (!core.iframe || !core.iframe.contentWindow) return;
    core.iframe.contentWindow.postMessage({ event, data }, core.ccpOrigin);
  }

  function onMessage(message) {
    if (!core.iframe || message.source !== core.iframe.contentWindow || message.origin !== core.ccpOrigin) return;
    const payload = message.data;
    if (!payload || typeof payload.event !== "string") return;
    if (payload.event === EventType.ACKNOWLEDGE) onAcknowledge(payload.data);
    bus.trigger(payload.event, payload.data);
  }

  function onAcknowledge() {
    window.clearTimeout(core.loadTimer);
    window.clearTimeout(core.ackTimer);
    if (!core.initialized) {
      core.initialized = true;
      if (core.configure) send(EventType.CONFIGURE, core.configure);
      send("outer_context_info", { streamsVersion: connect.version });
      send(EventType.SYNCHRONIZE, null);
      bus.trigger(EventType.INIT, null);
    }
    core.ackTimer = window.setTimeout(() => send(EventType.SYNCHRONIZE, null), core.params.ccpSynTimeout);
  }

  function initCCP(container, params) {
    if (!(container instanceof HTMLElement)) throw new TypeError("initCCP: container must be an HTML element");
    if (!params || typeof params.ccpUrl !== "string") throw new TypeError("initCCP: params.ccpUrl is required");
    if (core.iframe) throw new Error("initCCP: the CCP is already initialized");
    const url = new URL(params.ccpUrl, window.location.href);
    core.params = { ccpAckTimeout: 3000, ccpSynTimeout: 1000, ccpLoadTimeout: 5000, ...params };
    core.ccpOrigin = url.origin;
    const configure = {};
    for (const key of ["softphone", "chat", "task", "pageOptions", "shouldAddNamespaceToLogs", "disasterRecoveryOn"]) {
      if (params[key] !== undefined) configure[key] = params[key];
    }
    core.configure = Object.keys(configure).length ? configure : null;
    const iframe = document.createElement("iframe");
    iframe.src = url.href;
    iframe.allow = "microphone; camera; autoplay; clipboard-write; identity-credentials-get";
    iframe.title = "Contact Control Panel";
    iframe.style.width = `${params.width || 320}px`;
    iframe.style.height = `${params.height || 465}px`;
    iframe.style.border = "0";
    core.iframe = iframe;
    window.addEventListener("message", onMessage);
    container.appendChild(iframe);
    core.loadTimer = window.setTimeout(() => bus.trigger(EventType.ACK_TIMEOUT, null), core.params.ccpLoadTimeout);
    return iframe;
  }

  const connect = {
    version: "ccphost-0.1.0",
    EventType,
    core: {
      initCCP,
      getEventBus: () => bus,
      initialized: () => core.initialized,
    },
    agent(callback) {
      if (typeof callback !== "function") throw new TypeError("connect.agent: callback must be a function");
      agentCallbacks.push(callback);
    },
    contact(callback) {
      if (typeof callback !== "function") throw new TypeError("connect.contact: callback must be a function");
      contactCallbacks.push(callback);
    },
  };

  global.connect = connect;
})(typeof window !== "undefined" ? window : globalThis);
