// connect-streams.js: ccphost's host library. The Amazon Connect Streams API (connect.core,
// connect.agent, connect.contact, Agent, Contact, Connection, EventBus, logger) over the CCP
// postMessage protocol of shared/docs/ccp-wire-protocol.md, written for ccphost from that
// protocol; no code of amazon-connect-streams is in it. Plain JS, no build step.
// Classic script: defines window.connect. ES module: import connect-streams.mjs.
(function (global) {
  "use strict";
  if (global.connect && global.connect.ccphost) return; // loaded twice: keep the first

  const connect = {};
  const VERSION = "ccphost-1.0.0";

  // ---------------------------------------------------------------- utilities

  /** printf-style formatting: %s %d %i %f %j %o %%. */
  function vsprintf(format, args) {
    let index = 0;
    return String(format).replace(/%([%sdifjo])/g, (match, code) => {
      if (code === "%") return "%";
      if (index >= args.length) return match;
      const value = args[index++];
      if (code === "d" || code === "i") return String(Math.trunc(Number(value)));
      if (code === "f") return String(Number(value));
      if (code === "j" || code === "o") {
        try {
          return JSON.stringify(value);
        } catch {
          return String(value);
        }
      }
      return String(value);
    });
  }
  const sprintf = (format, ...args) => vsprintf(format, args);

  class BaseError extends Error {
    constructor(format, ...args) {
      super(vsprintf(format, args));
      this.name = new.target.name;
    }
  }
  class ValueError extends BaseError {}
  class StateError extends BaseError {}
  class NotImplementedError extends BaseError {}

  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
  const isFunction = (value) => typeof value === "function";
  const randomId = () =>
    global.crypto && global.crypto.randomUUID ? global.crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  const toTime = (value) => (value instanceof Date ? value.getTime() : new Date(value).getTime());

  function assertNotNull(value, name) {
    if (value === null || value === undefined) throw new ValueError("%s must be provided", name);
    return value;
  }

  /** Throws unless `callbacks` is absent or an object whose success/failure are functions. */
  function checkCallbacks(callbacks, where) {
    if (callbacks === undefined || callbacks === null) return {};
    if (!isObject(callbacks)) throw new ValueError("%s: callbacks must be an object like {success, failure}", where);
    for (const key of ["success", "failure"]) {
      if (callbacks[key] !== undefined && !isFunction(callbacks[key])) {
        throw new ValueError("%s: callbacks.%s must be a function", where, key);
      }
    }
    return callbacks;
  }

  function checkString(value, name, where) {
    if (typeof value !== "string" || !value) throw new ValueError("%s: %s must be a non-empty string", where, name);
    return value;
  }

  function hitch(scope, method, ...bound) {
    assertNotNull(scope, "scope");
    if (!isFunction(method)) throw new ValueError("hitch: method must be a function");
    return (...args) => method.apply(scope, bound.concat(args));
  }

  /** An enum from values: "AfterCallWork" -> AFTER_CALL_WORK, "not_routable" -> NOT_ROUTABLE. */
  function makeEnum(values, namespace) {
    const result = {};
    for (const value of values) {
      const key = value.replace(/([a-z])([A-Z])/g, "$1_$2").replace(/[.\-]/g, "_").toUpperCase();
      result[key] = namespace ? `${namespace}::${value}` : value;
    }
    return Object.freeze(result);
  }

  // ---------------------------------------------------------------- enums

  const AgentStateType = makeEnum(["init", "routable", "not_routable", "offline", "system", "error"]);
  const AgentAvailStates = makeEnum([
    "Init", "Busy", "AfterCallWork", "CallingCustomer", "Dialing", "Joining", "PendingAvailable", "PendingBusy",
  ]);
  const AgentErrorStates = makeEnum([
    "Error", "AgentHungUp", "BadAddressAgent", "BadAddressCustomer", "Default", "FailedConnectAgent",
    "FailedConnectCustomer", "InvalidLocale", "LineEngagedAgent", "LineEngagedCustomer", "MissedCallAgent",
    "MissedCallCustomer", "MultipleCcpWindows", "RealtimeCommunicationError",
  ]);
  const EndpointType = makeEnum(["phone_number", "agent", "queue"]);
  const ConnectionType = makeEnum(["agent", "inbound", "outbound", "monitoring"]);
  const ConnectionStateType = makeEnum(["init", "connecting", "connected", "hold", "disconnected", "silent_monitor", "barge"]);
  const ContactStateType = makeEnum([
    "init", "incoming", "pending", "connecting", "connected", "missed", "error", "ended", "rejected", "paused",
  ]);
  const ContactType = makeEnum(["voice", "queue_callback", "chat", "task", "email"]);
  const EventType = makeEnum([
    "acknowledge", "ack_timeout", "init", "api_request", "api_response", "auth_fail", "access_denied", "close",
    "configure", "log", "master_request", "master_response", "synchronize", "terminate", "terminated", "send_logs",
    "reload_agent_configuration", "broadcast", "api_metric", "client_metric", "softphone_stats", "softphone_report",
    "client_side_logs", "mute", "iframe_style", "iframe_retries_exhausted", "outer_context_info",
    "click_stream_data", "request_configure",
  ]);
  const AgentEvents = makeEnum([
    "init", "update", "refresh", "routable", "not_routable", "pending", "contact_pending", "offline", "error",
    "softphone_error", "websocket_connection_lost", "websocket_connection_gained", "state_change", "acw",
    "mute_toggle", "local_media_stream_created", "enqueued_next_state", "cleared_next_state",
  ], "agent");
  const ContactEvents = makeEnum([
    "init", "refresh", "destroyed", "incoming", "pending", "connecting", "connected", "missed", "acw", "view",
    "ended", "error", "accepted",
  ], "contact");
  const ConfigurationEvents = makeEnum([
    "configure", "set_speaker_device", "set_microphone_device", "set_ringer_device", "speaker_device_changed",
    "microphone_device_changed", "ringer_device_changed", "camera_device_changed", "background_blur_changed",
  ], "configuration");
  const ContactInitiationMethod = makeEnum(["inbound", "outbound", "transfer", "queue_transfer", "callback", "api"]);
  const ChannelType = makeEnum(["VOICE", "CHAT", "TASK"]);
  const MediaType = makeEnum(["softphone", "chat", "task", "email"]);
  const SoftphoneCallType = makeEnum(["audio_video", "video_only", "audio_only", "none"]);
  const SoftphoneErrorTypes = makeEnum([
    "unsupported_browser", "microphone_not_shared", "signalling_handshake_failure", "signalling_connection_failure",
    "ice_collection_timeout", "user_busy_error", "webrtc_error", "realtime_communication_error", "other",
  ]);
  const CONTACT_ACTIVE_STATES = ["paused", "incoming", "pending", "connecting", "connected"];
  const CONNECTION_ACTIVE_STATES = ["connecting", "connected", "hold", "silent_monitor", "barge"];
  const CONNECTION_CONNECTED_STATES = ["connected", "silent_monitor", "barge"];
  const INACTIVE_CONTACT_STATES = ["ended", "missed", "error", "rejected", "acw"];

  // ---------------------------------------------------------------- logger

  const LogLevel = makeEnum(["TEST", "TRACE", "DEBUG", "INFO", "LOG", "WARN", "ERROR", "CRITICAL"]);
  const LOG_ORDER = { TEST: 0, TRACE: 10, DEBUG: 20, INFO: 30, LOG: 40, WARN: 50, ERROR: 100, CRITICAL: 200 };
  const LogComponent = makeEnum(["ccp", "softphone", "chat", "task"]);
  const MAX_LOG_ENTRIES = 10000;

  function copyForLog(value) {
    try {
      return JSON.parse(JSON.stringify(value, (key, v) => (/token|password|secret/i.test(key) ? "[redacted]" : v)));
    } catch {
      return String(value);
    }
  }

  class LogEntry {
    constructor(component, level, text, loggerId) {
      this.component = component;
      this.level = level;
      this.text = text;
      this.time = new Date();
      this.exception = null;
      this.objects = [];
      this.line = 0;
      this.loggerId = loggerId;
    }
    getTime() { return this.time; }
    getLevel() { return this.level; }
    getText() { return this.text; }
    getComponent() { return this.component; }
    withException(error) {
      this.exception = error instanceof Error
        ? { type: error.name, message: error.message, stack: String(error.stack || "").split("\n") }
        : { message: String(error) };
      return this;
    }
    withObject(value) {
      this.objects.push(copyForLog(value));
      return this;
    }
    sendInternalLogToServer() { return this; } // ccphost keeps logs in the page
    toString() { return sprintf("[%s] [%s]: %s", this.time.toISOString(), this.level, this.text); }
  }

  const CONSOLE = { TEST: "log", TRACE: "debug", DEBUG: "debug", INFO: "info", LOG: "log", WARN: "warn", ERROR: "error", CRITICAL: "error" };

  class Logger {
    constructor() {
      this._logs = [];
      this._logLevel = LOG_ORDER.INFO;
      this._echoLevel = LOG_ORDER.WARN;
      this._lineCount = 0;
      this._loggerId = randomId();
      for (const level of Object.keys(LOG_ORDER)) {
        this[level.toLowerCase()] = (format, ...args) => this.write(LogComponent.CCP, level, vsprintf(format, args));
      }
    }
    _order(level, where) {
      if (!(level in LOG_ORDER)) throw new ValueError("%s: level must be one of %s", where, Object.keys(LOG_ORDER).join(", "));
      return LOG_ORDER[level];
    }
    setLogLevel(level) { this._logLevel = this._order(level, "setLogLevel"); }
    setEchoLevel(level) { this._echoLevel = this._order(level, "setEchoLevel"); }
    getLoggerId() { return this._loggerId; }
    write(component, level, text) {
      const entry = new LogEntry(component, level, text, this._loggerId);
      this.addLogEntry(entry);
      return entry;
    }
    addLogEntry(entry) {
      this._logs.push(entry);
      if (this._logs.length > MAX_LOG_ENTRIES) this._logs.splice(0, this._logs.length - MAX_LOG_ENTRIES);
      const order = LOG_ORDER[entry.level];
      if (order >= this._logLevel) {
        entry.line = this._lineCount++;
        if (order >= this._echoLevel && global.console) global.console[CONSOLE[entry.level]](entry.toString());
      }
    }
    getLogs() { return this._logs.slice(); }
    toString() { return this._logs.map(String).join("\n"); }
    /** Saves the log as a JSON file: download("name") or download({logName, filterByLogLevel}). */
    download(options) {
      let name = "agent-log";
      let filter = false;
      if (typeof options === "string" && options) name = options;
      else if (isObject(options)) {
        name = options.logName || name;
        filter = Boolean(options.filterByLogLevel);
      }
      const logs = filter ? this._logs.filter((e) => LOG_ORDER[e.level] >= this._logLevel) : this._logs;
      const blob = new Blob([JSON.stringify(logs, null, 2)], { type: "application/json" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `${name}.json`;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    }
  }
  const log = new Logger();

  // ---------------------------------------------------------------- event bus

  const ALL_EVENTS = "<<all>>";

  class Subscription {
    constructor(bus, eventName, f) {
      this.bus = bus;
      this.id = randomId();
      this.eventName = eventName;
      this.f = f;
    }
    unsubscribe() { this.bus._remove(this); }
  }

  class EventBus {
    constructor() { this._subs = new Map(); }
    subscribe(eventName, f) {
      checkString(eventName, "eventName", "EventBus.subscribe");
      if (!isFunction(f)) throw new ValueError("EventBus.subscribe: f must be a function");
      const sub = new Subscription(this, eventName, f);
      if (!this._subs.has(eventName)) this._subs.set(eventName, []);
      this._subs.get(eventName).push(sub);
      return sub;
    }
    subscribeAll(f) {
      if (!isFunction(f)) throw new ValueError("EventBus.subscribeAll: f must be a function");
      return this.subscribe(ALL_EVENTS, f);
    }
    unsubscribe(eventName, f) {
      for (const sub of this.getSubscriptions(eventName)) if (sub.f === f) sub.unsubscribe();
    }
    _remove(sub) {
      const list = (this._subs.get(sub.eventName) || []).filter((s) => s !== sub);
      if (list.length) this._subs.set(sub.eventName, list);
      else this._subs.delete(sub.eventName);
    }
    getSubscriptions(eventName) { return (this._subs.get(eventName) || []).slice(); }
    trigger(eventName, data) {
      checkString(eventName, "eventName", "EventBus.trigger");
      if (eventName.startsWith(ContactEvents.ACCEPTED) && data && data.contactId && !(data instanceof Contact)) {
        data = new Contact(data.contactId);
      }
      for (const sub of this.getSubscriptions(ALL_EVENTS).concat(this.getSubscriptions(eventName))) {
        try {
          sub.f(data === undefined ? null : data, eventName, this);
        } catch (error) {
          log.error("'%s' event handler failed.", eventName).withException(error);
        }
      }
    }
    bridge() { return (data, eventName) => this.trigger(eventName, data); }
    unsubscribeAll() { this._subs.clear(); }
  }

  // ---------------------------------------------------------------- the CCP link

  const core = {
    bus: new EventBus(),
    params: null,
    container: null,
    iframe: null,
    ccpOrigin: null,
    client: null,
    masterClient: null,
    provider: null,
    initialized: false,
    loadTimer: null,
    refreshTimer: null,
    refreshAttempts: 0,
    synTimer: null,
    ackTimer: null,
    loginWindow: null,
    portStreamId: null,
    cleanups: [],
  };
  const IFRAME_NAME = "Amazon Connect CCP";
  const IFRAME_REFRESH_LIMIT = 10;

  function sendUpstream(event, data) {
    if (!core.iframe || !core.iframe.contentWindow) return;
    core.iframe.contentWindow.postMessage({ event, data }, core.ccpOrigin);
  }

  /** Sends requests to the CCP and matches its responses by requestId. */
  class UpstreamClient {
    constructor(requestEvent, responseEvent) {
      this.requestEvent = requestEvent;
      this.pending = new Map();
      core.bus.subscribe(responseEvent, (data) => this._handle(data));
    }
    call(method, params, callbacks) {
      checkString(method, "method", "client.call");
      const checked = checkCallbacks(callbacks, method);
      const request = { event: this.requestEvent, requestId: randomId(), method, params: params || {} };
      this.pending.set(request.requestId, checked);
      sendUpstream(this.requestEvent, request);
    }
    _handle(data) {
      if (!isObject(data) || typeof data.requestId !== "string") return;
      const callbacks = this.pending.get(data.requestId);
      if (!callbacks) return;
      this.pending.delete(data.requestId);
      if (data.err && callbacks.failure) callbacks.failure(data.err, data.data);
      else if (!data.err && callbacks.success) callbacks.success(data.data);
    }
  }

  class NullClient {
    call(method, params, callbacks) {
      const checked = checkCallbacks(callbacks, method);
      const message = sprintf("The CCP link was terminated: %s was not sent", method);
      if (checked.failure) checked.failure(new ValueError(message), { message });
    }
  }

  function getClient() {
    if (!core.client) {
      throw new StateError("The connect core has not been initialized: call connect.core.initCCP and wait for the CCP to acknowledge");
    }
    return core.client;
  }

  function onMessage(message) {
    if (!core.iframe || message.source !== core.iframe.contentWindow || message.origin !== core.ccpOrigin) return;
    const payload = message.data;
    if (!isObject(payload) || typeof payload.event !== "string" || !payload.event) return;
    if (payload.event === EventType.ACKNOWLEDGE) {
      if (!isObject(payload.data) || typeof payload.data.id !== "string") {
        log.warn("Ignored an acknowledge without an id from the CCP");
        return;
      }
      onAcknowledge(payload.data);
    }
    if (payload.event === AgentEvents.UPDATE) {
      const problem = agentDataProblem(payload.data);
      if (problem) {
        log.error("Ignored an agent::update from the CCP: %s", problem);
        return;
      }
    }
    if (payload.event === EventType.LOG && isObject(payload.data) && typeof payload.data.text === "string") {
      const entry = new LogEntry(payload.data.component || LogComponent.CCP, payload.data.level in LOG_ORDER ? payload.data.level : "INFO", payload.data.text, payload.data.loggerId);
      if (entry.loggerId !== log.getLoggerId()) log.addLogEntry(entry);
    }
    core.bus.trigger(payload.event, payload.data);
  }

  function onAcknowledge(data) {
    if (!core.initialized) {
      core.client = new UpstreamClient(EventType.API_REQUEST, EventType.API_RESPONSE);
      core.masterClient = new UpstreamClient(EventType.MASTER_REQUEST, EventType.MASTER_RESPONSE);
      core.portStreamId = data.id;
      sendConfigure();
      clearTimeout(core.loadTimer);
      core.loadTimer = null;
      sendUpstream(EventType.OUTER_CONTEXT_INFO, { streamsVersion: VERSION });
      core.initialized = true;
      startKeepalive();
      log.info("Acknowledged by the CCP");
      core.bus.trigger(EventType.INIT, null);
    }
    if (core.refreshTimer) {
      clearTimeout(core.refreshTimer);
      core.refreshTimer = null;
      const options = core.params.loginOptions || {};
      if ((core.params.loginPopupAutoClose || options.autoClose) && core.loginWindow) {
        core.loginWindow.close();
        core.loginWindow = null;
      }
    }
  }

  /** Keep-alive: synchronize, wait for the acknowledge, wait ccpSynTimeout, again. */
  function startKeepalive() {
    if (!core.iframe) return;
    sendUpstream(EventType.SYNCHRONIZE, null);
    const sub = core.bus.subscribe(EventType.ACKNOWLEDGE, () => {
      sub.unsubscribe();
      clearTimeout(core.ackTimer);
      core.synTimer = setTimeout(startKeepalive, core.params.ccpSynTimeout);
    });
    core.ackTimer = setTimeout(() => {
      sub.unsubscribe();
      log.warn("The CCP did not acknowledge within %d ms", core.params.ccpAckTimeout);
      if ((core.params.loginOptions || {}).enableAckTimeout) core.bus.trigger(EventType.ACK_TIMEOUT, null);
      core.synTimer = setTimeout(startKeepalive, core.params.ccpSynTimeout);
    }, core.params.ccpAckTimeout);
  }

  const CONFIGURE_KEYS = ["softphone", "chat", "task", "pageOptions", "shouldAddNamespaceToLogs", "disasterRecoveryOn"];
  function sendConfigure() {
    const params = core.params;
    if (!CONFIGURE_KEYS.some((key) => params[key])) return;
    const configuration = {};
    for (const key of CONFIGURE_KEYS) if (params[key] !== undefined) configuration[key] = params[key];
    sendUpstream(EventType.CONFIGURE, configuration);
  }

  function defaultLoginUrl(ccpUrl) {
    const url = new URL(ccpUrl);
    if (/^\/connect\/[\w-]+\/ccp-v2\/$/.test(url.pathname)) return `${url.origin}${url.pathname.replace(/ccp-v2\/$/, "login/")}`;
    return ccpUrl;
  }

  function openLoginPopup() {
    if (core.loginWindow && !core.loginWindow.closed) {
      core.loginWindow.focus();
      return;
    }
    const options = core.params.loginOptions || {};
    const features = `width=${options.width || 433},height=${options.height || 578},top=${options.top || 0},left=${options.left || 0}`;
    core.loginWindow = global.open(core.params.loginUrl || defaultLoginUrl(core.params.ccpUrl), "connect-login-popup", features);
    if (!core.loginWindow) log.warn("The browser blocked the login popup: allow popups for this page to sign in");
  }

  /** After auth_fail, terminated or no first acknowledge: open the login popup, reload the iframe. */
  function authenticate() {
    if (!core.iframe) return;
    if (core.params.loginPopup !== false) openLoginPopup();
    if (core.refreshTimer) return;
    core.refreshAttempts = 0;
    scheduleRefresh();
  }

  function scheduleRefresh() {
    core.refreshTimer = setTimeout(() => {
      core.refreshAttempts += 1;
      if (core.refreshAttempts > IFRAME_REFRESH_LIMIT) {
        core.refreshTimer = null;
        core.bus.trigger(EventType.IFRAME_RETRIES_EXHAUSTED, null);
        return;
      }
      replaceIframe();
      scheduleRefresh();
    }, core.params.ccpLoadTimeout);
  }

  function createIframe() {
    const iframe = document.createElement("iframe");
    iframe.src = core.params.ccpUrl;
    iframe.allow = "microphone; camera; autoplay; clipboard-write; identity-credentials-get; storage-access";
    const { width, height } = core.params; // ccphost's addition: a fixed size in pixels
    const size = width || height ? `width: ${width ? `${width}px` : "100%"}; height: ${height ? `${height}px` : "100%"};` : "";
    iframe.setAttribute("style", core.params.style || size || "width: 100%; height: 100%;");
    iframe.title = core.params.iframeTitle || IFRAME_NAME;
    iframe.name = IFRAME_NAME;
    core.container.appendChild(iframe);
    core.iframe = iframe;
    return iframe;
  }

  function replaceIframe() {
    const old = core.iframe;
    const style = old ? old.getAttribute("style") : null;
    if (old) old.remove();
    const iframe = createIframe();
    if (style) iframe.setAttribute("style", style);
  }

  function checkTimeout(params, key) {
    const value = params[key];
    if (value === undefined) return;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new ValueError("initCCP: %s must be a positive number, not %j", key, value);
    }
  }

  function checkInitParams(container, params) {
    if (!container || typeof container.appendChild !== "function" || container.nodeType !== 1) {
      throw new ValueError("initCCP: containerDiv must be a DOM element");
    }
    if (!isObject(params)) throw new ValueError("initCCP: params must be an object with at least ccpUrl");
    checkString(params.ccpUrl, "params.ccpUrl", "initCCP");
    let url;
    try {
      url = new URL(params.ccpUrl, global.location.href);
    } catch {
      throw new ValueError("initCCP: params.ccpUrl is not a URL: %s", params.ccpUrl);
    }
    if (!/^https?:$/.test(url.protocol)) throw new ValueError("initCCP: params.ccpUrl must be an http(s) URL, not %s", params.ccpUrl);
    if (params.loginUrl !== undefined) {
      checkString(params.loginUrl, "params.loginUrl", "initCCP");
      if (!/^https?:$/.test(new URL(params.loginUrl, global.location.href).protocol)) {
        throw new ValueError("initCCP: params.loginUrl must be an http(s) URL, not %s", params.loginUrl);
      }
    }
    for (const key of ["loginPopup", "loginPopupAutoClose"]) {
      if (params[key] !== undefined && typeof params[key] !== "boolean") throw new ValueError("initCCP: %s must be true or false", key);
    }
    for (const key of ["ccpAckTimeout", "ccpSynTimeout", "ccpLoadTimeout", "width", "height"]) checkTimeout(params, key);
    for (const key of ["softphone", "chat", "task", "pageOptions", "loginOptions"]) {
      if (params[key] !== undefined && !isObject(params[key])) throw new ValueError("initCCP: %s must be an object", key);
    }
    const softphone = params.softphone || {};
    for (const key of ["allowFramedSoftphone", "disableRingtone"]) {
      if (softphone[key] !== undefined && typeof softphone[key] !== "boolean") throw new ValueError("initCCP: softphone.%s must be true or false", key);
    }
    if (softphone.ringtoneUrl !== undefined) checkString(softphone.ringtoneUrl, "softphone.ringtoneUrl", "initCCP");
    return url;
  }

  function initCCP(containerDiv, paramsIn) {
    const url = checkInitParams(containerDiv, paramsIn);
    if (core.iframe) throw new StateError("initCCP: the CCP is already initialized; call connect.core.terminate() first");
    core.params = { ccpAckTimeout: 3000, ccpSynTimeout: 1000, ccpLoadTimeout: 5000, ...paramsIn, ccpUrl: url.href };
    core.ccpOrigin = url.origin;
    core.container = containerDiv;
    global.addEventListener("message", onMessage);
    const bus = core.bus;
    const delayed = () => setTimeout(authenticate, core.params.ccpAckTimeout);
    core.cleanups = [
      bus.subscribe(EventType.ACK_TIMEOUT, authenticate),
      bus.subscribe(EventType.REQUEST_CONFIGURE, sendConfigure),
    ];
    if (!(core.params.loginOptions || {}).disableAuthPopupAfterLogout) {
      core.cleanups.push(bus.subscribe(EventType.AUTH_FAIL, delayed), bus.subscribe(EventType.TERMINATED, delayed));
    }
    const iframe = createIframe();
    core.loadTimer = setTimeout(() => {
      core.loadTimer = null;
      log.warn("The CCP did not acknowledge within ccpLoadTimeout (%d ms)", core.params.ccpLoadTimeout);
      bus.trigger(EventType.ACK_TIMEOUT, null);
    }, core.params.ccpLoadTimeout);
    return iframe;
  }

  function terminate() {
    sendUpstream(EventType.TERMINATE, null);
    for (const timer of ["loadTimer", "refreshTimer", "synTimer", "ackTimer"]) {
      clearTimeout(core[timer]);
      core[timer] = null;
    }
    global.removeEventListener("message", onMessage);
    core.bus.unsubscribeAll();
    core.bus = new EventBus();
    core.client = new NullClient();
    core.masterClient = new NullClient();
    core.provider = new AgentDataProvider(core.bus);
    if (core.iframe) core.iframe.remove();
    core.iframe = null;
    core.initialized = false;
    connect.agent.initialized = false;
    endedTracker.clear();
    stopSubscriptions();
  }

  // ---------------------------------------------------------------- agent data and events

  function agentDataProblem(data) {
    if (!isObject(data)) return "data must be {snapshot, configuration}";
    const { snapshot, configuration } = data;
    if (!isObject(snapshot) || !isObject(configuration)) return "data must be {snapshot, configuration}";
    if (!isObject(snapshot.state) || typeof snapshot.state.type !== "string" || typeof snapshot.state.name !== "string") {
      return "snapshot.state must have a type and a name";
    }
    if (!Array.isArray(snapshot.contacts)) return "snapshot.contacts must be a list";
    for (const contact of snapshot.contacts) {
      if (!isObject(contact) || typeof contact.contactId !== "string" || !isObject(contact.state) || !Array.isArray(contact.connections)) {
        return "each contact needs a contactId, a state and connections";
      }
    }
    return null;
  }

  /** Rules [from, to, event] in order; "*" is any state. */
  const ANY = "*";
  const ROUTING_RULES = [
    [ANY, "routable", AgentEvents.ROUTABLE],
    [ANY, "not_routable", AgentEvents.NOT_ROUTABLE],
    [ANY, "offline", AgentEvents.OFFLINE],
  ];
  const STATE_RULES = [
    ...Object.values(AgentErrorStates).map((name) => [ANY, name, AgentEvents.ERROR]),
    [ANY, AgentAvailStates.AFTER_CALL_WORK, AgentEvents.ACW],
  ];
  const ENDED_TARGETS = Object.values(ContactStateType).filter((s) => !CONTACT_ACTIVE_STATES.includes(s));
  const CONTACT_RULES = [
    [ANY, "incoming", ContactEvents.INCOMING],
    [ANY, "pending", ContactEvents.PENDING],
    [ANY, "connecting", ContactEvents.CONNECTING],
    [ANY, "connected", ContactEvents.CONNECTED],
    ["connecting", "error", ContactEvents.MISSED],
    ["incoming", "error", ContactEvents.MISSED],
    [ANY, "ended", ContactEvents.ACW],
    ...CONTACT_ACTIVE_STATES.flatMap((from) => ENDED_TARGETS.map((to) => [from, to, ContactEvents.ENDED])),
    [ANY, "error", ContactEvents.ERROR],
    ...["connecting", "incoming"].flatMap((from) => ["missed", "rejected"].map((to) => [from, to, ContactEvents.MISSED])),
  ];

  /** The events of a change from `from` to `to`: rules from any state first, then from `from`. */
  function eventsFor(rules, from, to) {
    const matches = (rule) => rule[1] === to || rule[1] === ANY;
    return rules.filter((r) => r[0] === ANY && matches(r)).concat(rules.filter((r) => r[0] === from && from !== ANY && matches(r))).map((r) => r[2]);
  }

  const endedTracker = new Set();
  const contactEventName = (eventName, contactId) => {
    if (!Object.values(ContactEvents).includes(eventName)) throw new ValueError("%s is not a contact event", eventName);
    assertNotNull(contactId, "contactId");
    return `${eventName}::${contactId}`;
  };

  class AgentDataProvider {
    constructor(bus) {
      this.bus = bus;
      this.agentData = null;
      bus.subscribe(AgentEvents.UPDATE, (data) => this.updateAgentData(data));
    }
    updateAgentData(agentData) {
      const old = this.agentData;
      this.agentData = agentData;
      if (!connect.agent.initialized) {
        connect.agent.initialized = true;
        this.bus.trigger(AgentEvents.INIT, new Agent());
      }
      this.bus.trigger(AgentEvents.REFRESH, new Agent());
      this._fireAgentEvents(old);
    }
    getAgentData() {
      if (!this.agentData) throw new StateError("No agent data is available yet: wait for connect.agent()");
      return this.agentData;
    }
    getContactData(contactId) {
      const found = this.getAgentData().snapshot.contacts.find((c) => c.contactId === contactId);
      if (!found) throw new StateError("Contact %s no longer exists.", contactId);
      return found;
    }
    getConnectionData(contactId, connectionId) {
      const found = this.getContactData(contactId).connections.find((c) => c.connectionId === connectionId);
      if (!found) throw new StateError("Connection %s for contact %s no longer exists.", connectionId, contactId);
      return found;
    }
    getInstanceId() {
      return this.getAgentData().configuration.routingProfile.routingProfileId.match(/instance\/([0-9a-fA-F|-]+)\//)[1];
    }
    getAWSAccountId() {
      return this.getAgentData().configuration.routingProfile.routingProfileId.match(/:([0-9]+):instance/)[1];
    }
    _fireAgentEvents(old) {
      const bus = this.bus;
      const snapshot = this.agentData.snapshot;
      const oldType = old ? old.snapshot.state.type : AgentStateType.INIT;
      const oldName = old ? old.snapshot.state.name : AgentAvailStates.INIT;
      if (oldType !== snapshot.state.type) {
        for (const event of eventsFor(ROUTING_RULES, oldType, snapshot.state.type)) bus.trigger(event, new Agent());
      }
      if (oldName !== snapshot.state.name) {
        bus.trigger(AgentEvents.STATE_CHANGE, { agent: new Agent(), oldState: oldName, newState: snapshot.state.name });
        for (const event of eventsFor(STATE_RULES, oldName, snapshot.state.name)) bus.trigger(event, new Agent());
      }
      const oldNext = old && old.snapshot.nextState ? old.snapshot.nextState.name : null;
      const newNext = snapshot.nextState ? snapshot.nextState.name : null;
      if (oldNext !== newNext) bus.trigger(newNext ? AgentEvents.ENQUEUED_NEXT_STATE : AgentEvents.CLEARED_NEXT_STATE, new Agent());

      const oldMap = new Map((old ? old.snapshot.contacts : []).map((c) => [c.contactId, c]));
      const newMap = new Map(snapshot.contacts.map((c) => [c.contactId, c]));
      for (const [contactId, contact] of newMap) {
        if (oldMap.has(contactId)) continue;
        endedTracker.add(contactId);
        bus.trigger(ContactEvents.INIT, new Contact(contactId));
        this._fireContactEvents(contactId, ContactStateType.INIT, contact.state.type);
      }
      for (const [contactId, contact] of oldMap) {
        if (newMap.has(contactId)) continue;
        if (endedTracker.delete(contactId)) {
          bus.trigger(ContactEvents.ENDED, new ContactSnapshot(contact));
          bus.trigger(contactEventName(ContactEvents.ENDED, contactId), new ContactSnapshot(contact));
        }
        bus.trigger(ContactEvents.DESTROYED, new ContactSnapshot(contact));
        bus.trigger(contactEventName(ContactEvents.DESTROYED, contactId), new ContactSnapshot(contact));
        for (const eventName of Object.values(ContactEvents)) {
          for (const sub of bus.getSubscriptions(contactEventName(eventName, contactId))) sub.unsubscribe();
        }
      }
      for (const [contactId, contact] of newMap) {
        if (oldMap.has(contactId)) this._fireContactEvents(contactId, oldMap.get(contactId).state.type, contact.state.type);
      }
    }
    _fireContactEvents(contactId, from, to) {
      const bus = this.bus;
      if (from !== to) {
        for (const event of eventsFor(CONTACT_RULES, from, to)) {
          if (INACTIVE_CONTACT_STATES.includes(to)) endedTracker.delete(contactId);
          bus.trigger(event, new Contact(contactId));
          bus.trigger(contactEventName(event, contactId), new Contact(contactId));
        }
      }
      bus.trigger(ContactEvents.REFRESH, new Contact(contactId));
      bus.trigger(contactEventName(ContactEvents.REFRESH, contactId), new Contact(contactId));
    }
  }

  const provider = () => core.provider; // made when the library loads, renewed by terminate()
  const durationSince = (timestamp) => Date.now() - toTime(timestamp) + (provider().getAgentData().snapshot.skew || 0);
  const on = (eventName) => function (f) {
    if (!isFunction(f)) throw new ValueError("%s: the callback must be a function", eventName);
    return core.bus.subscribe(typeof eventName === "function" ? eventName(this) : eventName, f);
  };
  const broadcast = (event, data) => sendUpstream(EventType.BROADCAST, { event, data });

  // ---------------------------------------------------------------- Endpoint

  class Endpoint {
    constructor(paramsIn) {
      const params = paramsIn || {};
      this.endpointARN = params.endpointId || params.endpointARN || null;
      this.endpointId = this.endpointARN;
      this.type = params.type || null;
      this.name = params.name || null;
      this.phoneNumber = params.phoneNumber || null;
      this.agentLogin = params.agentLogin || null;
      this.queue = params.queue || null;
    }
    stripPhoneNumber() { return this.phoneNumber ? this.phoneNumber.replace(/sip:([^@]*)@.*/, "$1") : ""; }
    static byPhoneNumber(number, name) {
      checkString(number, "number", "Endpoint.byPhoneNumber");
      if (name !== undefined && name !== null && typeof name !== "string") throw new ValueError("Endpoint.byPhoneNumber: name must be a string");
      return new Endpoint({ type: EndpointType.PHONE_NUMBER, phoneNumber: number, name: name || null });
    }
  }

  /** A validated endpoint for the CCP, without endpointId (the API refuses unknown fields). */
  function endpointParam(endpointIn, where) {
    if (!isObject(endpointIn)) throw new ValueError("%s: endpoint must be an Endpoint, e.g. connect.Endpoint.byPhoneNumber('+15555550100')", where);
    const endpoint = new Endpoint(endpointIn);
    if (!Object.values(EndpointType).includes(endpoint.type)) {
      throw new ValueError("%s: endpoint.type must be one of %s", where, Object.values(EndpointType).join(", "));
    }
    if (endpoint.type === EndpointType.PHONE_NUMBER && !endpoint.phoneNumber && !endpoint.endpointARN) {
      throw new ValueError("%s: a phone_number endpoint needs a phoneNumber", where);
    }
    if (endpoint.type !== EndpointType.PHONE_NUMBER && !endpoint.endpointARN) {
      throw new ValueError("%s: a %s endpoint needs an endpointARN", where, endpoint.type);
    }
    delete endpoint.endpointId;
    return endpoint;
  }

  // ---------------------------------------------------------------- Agent

  class Agent {
    constructor() {
      if (!connect.agent.initialized) throw new StateError("The agent is not yet initialized!");
    }
    _getData() { return provider().getAgentData(); }
    _createContactAPI(data) { return new Contact(data.contactId); }
    getState() { return this._getData().snapshot.state; }
    getNextState() { return this._getData().snapshot.nextState || null; }
    getAvailabilityState() { return this._getData().snapshot.agentAvailabilityState; }
    getStateDuration() {
      const data = this._getData();
      return Date.now() - toTime(data.snapshot.state.startTimestamp) + (data.snapshot.skew || 0);
    }
    getPermissions() { return this.getConfiguration().permissions; }
    getContacts(contactTypeFilter) {
      if (contactTypeFilter !== undefined && contactTypeFilter !== null && !Object.values(ContactType).includes(contactTypeFilter)) {
        throw new ValueError("getContacts: the filter must be one of %s, not %j", Object.values(ContactType).join(", "), contactTypeFilter);
      }
      return this._getData().snapshot.contacts
        .map((data) => this._createContactAPI(data))
        .filter((contact) => !contactTypeFilter || contact.getType() === contactTypeFilter);
    }
    getConfiguration() { return this._getData().configuration; }
    getAgentStates() { return this.getConfiguration().agentStates; }
    getRoutingProfile() { return this.getConfiguration().routingProfile; }
    getChannelConcurrency(channel) {
      const map = this.getRoutingProfile().channelConcurrencyMap || { VOICE: 1, CHAT: 1 };
      return channel ? map[channel] || 0 : map;
    }
    getName() { return this.getConfiguration().name; }
    getAgentARN() { return this.getConfiguration().agentARN; }
    getExtension() { return this.getConfiguration().extension; }
    getDialableCountries() { return this.getConfiguration().dialableCountries; }
    isSoftphoneEnabled() { return this.getConfiguration().softphoneEnabled; }
    getAllQueueARNs() { return this.getRoutingProfile().queues.map((q) => q.queueARN); }
    setConfiguration(configuration, callbacks) {
      if (!isObject(configuration)) throw new ValueError("setConfiguration: configuration must be an object, e.g. agent.getConfiguration() changed");
      const checked = checkCallbacks(callbacks, "setConfiguration");
      const prefs = configuration.agentPreferences;
      if (prefs && prefs.LANGUAGE && !prefs.locale) prefs.locale = prefs.LANGUAGE;
      if (prefs && prefs.locale !== undefined && !/^[a-z]{2}_[A-Z]{2}$/.test(prefs.locale)) {
        if (checked.failure) checked.failure(AgentErrorStates.INVALID_LOCALE);
        return;
      }
      getClient().call("updateAgentConfiguration", { configuration }, {
        success: (data) => {
          sendUpstream(EventType.RELOAD_AGENT_CONFIGURATION, null);
          if (checked.success) checked.success(data);
        },
        failure: checked.failure,
      });
    }
    setState(state, callbacks, options) {
      if (!isObject(state) || typeof state.name !== "string" || typeof state.type !== "string") {
        throw new ValueError("setState: state must be one of agent.getAgentStates(), not %j", state);
      }
      if (options !== undefined && options !== null && !isObject(options)) throw new ValueError("setState: options must be an object like {enqueueNextState: true}");
      checkCallbacks(callbacks, "setState");
      getClient().call("putAgentState", { state, enqueueNextState: Boolean(options && options.enqueueNextState) }, callbacks);
    }
    connect(endpointIn, params) {
      const endpoint = endpointParam(endpointIn, "agent.connect");
      if (params !== undefined && params !== null && !isObject(params)) throw new ValueError("agent.connect: params must be an object like {queueARN, success, failure}");
      const options = checkCallbacks(params, "agent.connect");
      if (options.queueARN !== undefined && typeof options.queueARN !== "string") throw new ValueError("agent.connect: params.queueARN must be a string");
      if (options.timeout !== undefined && !(typeof options.timeout === "number" && options.timeout > 0)) {
        throw new ValueError("agent.connect: params.timeout must be a positive number of milliseconds");
      }
      const queueARN = options.queueARN || options.queueId || (this.getRoutingProfile().defaultOutboundQueue || {}).queueARN;
      let settled = false;
      let timer = null;
      const settle = (f) => (...args) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (f) f(...args);
      };
      const callbacks = { success: settle(options.success), failure: settle(options.failure) };
      if (options.timeout) {
        timer = setTimeout(() => callbacks.failure(new ValueError("Agent.connect timed out after %d ms", options.timeout)), options.timeout);
      }
      getClient().call("createOutboundContact", { endpoint, queueARN }, callbacks);
    }
    getEndpoints(queueARNs, callbacks, pageInfoIn) {
      if (!isObject(callbacks) || !isFunction(callbacks.success)) throw new ValueError("getEndpoints: callbacks.success must be a function");
      checkCallbacks(callbacks, "getEndpoints");
      const arns = Array.isArray(queueARNs) ? queueARNs : [queueARNs];
      if (!arns.every((arn) => typeof arn === "string" && arn)) throw new ValueError("getEndpoints: queueARNs must be queue ARN strings");
      const page = pageInfoIn || {};
      const collected = page.endpoints || [];
      const maxResults = page.maxResults || 100;
      getClient().call("getEndpoints", { queueARNs: arns, nextToken: page.nextToken || null, maxResults }, {
        success: (data) => {
          const all = collected.concat((data && data.endpoints) || []);
          if (data && data.nextToken) {
            this.getEndpoints(arns, callbacks, { nextToken: data.nextToken, maxResults, endpoints: all });
            return;
          }
          const endpoints = all.map((e) => new Endpoint(e));
          callbacks.success({ endpoints, addresses: endpoints });
        },
        failure: callbacks.failure,
      });
    }
    mute() { broadcast(EventType.MUTE, { mute: true }); }
    unmute() { broadcast(EventType.MUTE, { mute: false }); }
    setSpeakerDevice(deviceId) { broadcast(ConfigurationEvents.SET_SPEAKER_DEVICE, { deviceId }); }
    setMicrophoneDevice(deviceId) { broadcast(ConfigurationEvents.SET_MICROPHONE_DEVICE, { deviceId }); }
    setRingerDevice(deviceId) { broadcast(ConfigurationEvents.SET_RINGER_DEVICE, { deviceId }); }
    toSnapshot() { return new AgentSnapshot(this._getData()); }
  }
  const AGENT_EVENTS = {
    onRefresh: AgentEvents.REFRESH, onRoutable: AgentEvents.ROUTABLE, onNotRoutable: AgentEvents.NOT_ROUTABLE,
    onOffline: AgentEvents.OFFLINE, onError: AgentEvents.ERROR, onSoftphoneError: AgentEvents.SOFTPHONE_ERROR,
    onWebSocketConnectionLost: AgentEvents.WEBSOCKET_CONNECTION_LOST,
    onWebSocketConnectionGained: AgentEvents.WEBSOCKET_CONNECTION_GAINED, onAfterCallWork: AgentEvents.ACW,
    onStateChange: AgentEvents.STATE_CHANGE, onMuteToggle: AgentEvents.MUTE_TOGGLE,
    onLocalMediaStreamCreated: AgentEvents.LOCAL_MEDIA_STREAM_CREATED, onContactPending: AgentEvents.CONTACT_PENDING,
    onEnqueuedNextState: AgentEvents.ENQUEUED_NEXT_STATE, onClearedNextState: AgentEvents.CLEARED_NEXT_STATE,
  };
  for (const [name, eventName] of Object.entries(AGENT_EVENTS)) Agent.prototype[name] = on(eventName);
  Object.assign(Agent.prototype, {
    getStatus: Agent.prototype.getState,
    getStatusDuration: Agent.prototype.getStateDuration,
    setStatus: Agent.prototype.setState,
    getAddresses: Agent.prototype.getEndpoints,
  });

  class AgentSnapshot extends Agent {
    constructor(agentData) {
      super();
      this.agentData = agentData;
    }
    _getData() { return this.agentData; }
    _createContactAPI(data) { return new ContactSnapshot(data); }
  }

  // ---------------------------------------------------------------- Contact

  class Contact {
    constructor(contactId) {
      this.contactId = contactId;
    }
    _getData() { return provider().getContactData(this.contactId); }
    _connection(data) {
      const type = this.getType();
      return type === ContactType.VOICE || type === ContactType.QUEUE_CALLBACK
        ? new VoiceConnection(this.contactId, data.connectionId)
        : new Connection(this.contactId, data.connectionId);
    }
    getEventName(eventName) { return contactEventName(eventName, this.contactId); }
    getContactId() { return this.contactId; }
    getOriginalContactId() { return this._getData().initialContactId; }
    getType() { return this._getData().type; }
    getContactDuration() { return this._getData().contactDuration; }
    getState() { return this._getData().state; }
    getStateDuration() { return durationSince(this._getData().state.timestamp); }
    getQueue() { return this._getData().queue; }
    getQueueTimestamp() { return this._getData().queueTimestamp; }
    getConnections() { return this._getData().connections.map((data) => this._connection(data)); }
    getInitialConnection() { return this.getConnections().find((c) => c.isInitialConnection()) || null; }
    getActiveInitialConnection() {
      const initial = this.getInitialConnection();
      return initial && initial.isActive() ? initial : null;
    }
    getThirdPartyConnections() {
      return this.getConnections().filter((c) => !c.isInitialConnection() && c.getType() !== ConnectionType.AGENT);
    }
    getSingleActiveThirdPartyConnection() { return this.getThirdPartyConnections().filter((c) => c.isActive())[0] || null; }
    getAgentConnection() {
      return this.getConnections().find((c) => [ConnectionType.AGENT, ConnectionType.MONITORING].includes(c.getType())) || null;
    }
    getActiveConnections() { return this.getConnections().filter((c) => c.isActive()); }
    hasTwoActiveParticipants() { return this.getActiveConnections().length === 2; }
    getName() { return this._getData().name; }
    getDescription() { return this._getData().description; }
    getReferences() { return this._getData().references; }
    getInitiationMethod() { return this._getData().initiationMethod; }
    getAttributes() { return this._getData().attributes || {}; }
    getContactFeatures() { return this._getData().contactFeatures; }
    getSegmentAttributes() { return this._getData().segmentAttributes; }
    isMultiPartyConferenceEnabled() { return Boolean((this.getContactFeatures() || {}).multiPartyConferenceEnabled); }
    isSoftphoneCall() {
      if (![ContactType.VOICE, ContactType.QUEUE_CALLBACK].includes(this.getType())) return false;
      return this.getConnections().some((c) => Boolean(c.getSoftphoneMediaInfo()));
    }
    isInbound() {
      const initial = this.getInitialConnection();
      return initial ? initial.getType() === ConnectionType.INBOUND : false;
    }
    isConnected() { return this.getState().type === ContactStateType.CONNECTED; }
    accept(callbacks) {
      const checked = checkCallbacks(callbacks, "contact.accept");
      const contactId = this.contactId;
      getClient().call("acceptContact", { contactId }, {
        success: (data) => {
          broadcast(ContactEvents.ACCEPTED, new Contact(contactId));
          broadcast(contactEventName(ContactEvents.ACCEPTED, contactId), new Contact(contactId));
          if (checked.success) checked.success(data);
        },
        failure: (err, data) => {
          log.error("Accepting contact %s failed", contactId).withObject({ err, data });
          if (checked.failure) checked.failure(ContactStateType.ERROR);
        },
      });
    }
    destroy() { log.warn("contact.destroy() is deprecated: use contact.getAgentConnection().destroy()"); }
    _call(method, callbacks, extra) {
      checkCallbacks(callbacks, `contact.${method}`);
      getClient().call(method, { contactId: this.contactId, ...extra }, callbacks);
    }
    reject(callbacks) { this._call("rejectContact", callbacks); }
    complete(callbacks) { this._call("completeContact", callbacks); }
    clear(callbacks) { this._call("clearContact", callbacks); }
    conferenceConnections(callbacks) { this._call("conferenceConnections", callbacks); }
    notifyIssue(issueCode, description, callbacks) {
      checkString(issueCode, "issueCode", "contact.notifyIssue");
      if (description !== undefined && description !== null && typeof description !== "string") throw new ValueError("contact.notifyIssue: description must be a string");
      this._call("notifyContactIssue", callbacks, { issueCode, description });
    }
    addConnection(endpointIn, callbacks) {
      const endpoint = endpointParam(endpointIn, "contact.addConnection");
      this._call("createAdditionalConnection", callbacks, { endpoint });
    }
    toggleActiveConnections(callbacks) {
      const connections = this.getConnections();
      const held = connections.find((c) => c.isOnHold());
      const target = held || connections.find((c) => c.isActive());
      this._call("toggleActiveConnections", callbacks, { connectionId: target ? target.getConnectionId() : null });
    }
    toSnapshot() { return new ContactSnapshot(this._getData()); }
  }
  const CONTACT_EVENTS = {
    onRefresh: ContactEvents.REFRESH, onIncoming: ContactEvents.INCOMING, onConnecting: ContactEvents.CONNECTING,
    onPending: ContactEvents.PENDING, onAccepted: ContactEvents.ACCEPTED, onMissed: ContactEvents.MISSED,
    onEnded: ContactEvents.ENDED, onDestroy: ContactEvents.DESTROYED, onACW: ContactEvents.ACW,
    onConnected: ContactEvents.CONNECTED, onError: ContactEvents.ERROR,
  };
  for (const [name, eventName] of Object.entries(CONTACT_EVENTS)) {
    Contact.prototype[name] = on((contact) => contact.getEventName(eventName));
  }
  Object.assign(Contact.prototype, {
    getInitialContactId: Contact.prototype.getOriginalContactId,
    getStatus: Contact.prototype.getState,
    getStatusDuration: Contact.prototype.getStateDuration,
  });

  class ContactSnapshot extends Contact {
    constructor(contactData) {
      super(contactData.contactId);
      this.contactData = contactData;
    }
    _getData() { return this.contactData; }
    _connection(data) { return new ConnectionSnapshot(data, this.contactId); }
  }

  // ---------------------------------------------------------------- Connection

  class Connection {
    constructor(contactId, connectionId) {
      this.contactId = contactId;
      this.connectionId = connectionId;
    }
    _getData() { return provider().getConnectionData(this.contactId, this.connectionId); }
    getContactId() { return this.contactId; }
    getConnectionId() { return this.connectionId; }
    getEndpoint() { return new Endpoint(this._getData().endpoint); }
    getState() { return this._getData().state; }
    getStateDuration() { return durationSince(this._getData().state.timestamp); }
    getType() { return this._getData().type; }
    isInitialConnection() { return this._getData().initial; }
    isActive() { return CONNECTION_ACTIVE_STATES.includes(this.getState().type); }
    isConnected() { return CONNECTION_CONNECTED_STATES.includes(this.getState().type); }
    isConnecting() { return this.getState().type === ConnectionStateType.CONNECTING; }
    isOnHold() { return this.getState().type === ConnectionStateType.HOLD; }
    getSoftphoneMediaInfo() { return this._getData().softphoneMediaInfo; }
    getMediaInfo() { return this._getData().softphoneMediaInfo; }
    getMonitorInfo() { return this._getData().monitoringInfo; }
    _call(method, callbacks, extra) {
      checkCallbacks(callbacks, `connection.${method}`);
      getClient().call(method, { contactId: this.contactId, connectionId: this.connectionId, ...extra }, callbacks);
    }
    destroy(callbacks) { this._call("destroyConnection", callbacks); }
    hold(callbacks) { this._call("holdConnection", callbacks); }
    resume(callbacks) { this._call("resumeConnection", callbacks); }
    sendDigits(digits, callbacks) {
      if (typeof digits !== "string" || !/^[0-9A-Da-d*#,+wW ]+$/.test(digits)) {
        throw new ValueError("connection.sendDigits: digits must be a string of 0-9, *, #, A-D, comma or w, not %j", digits);
      }
      this._call("sendDigits", callbacks, { digits });
    }
    toSnapshot() { return new ConnectionSnapshot(this._getData(), this.contactId); }
  }
  Object.assign(Connection.prototype, {
    getAddress: Connection.prototype.getEndpoint,
    getStatus: Connection.prototype.getState,
    getStatusDuration: Connection.prototype.getStateDuration,
  });

  class VoiceConnection extends Connection {
    getMediaType() { return MediaType.SOFTPHONE; }
    getQuickConnectName() { return this._getData().quickConnectName; }
    isMute() { return this._getData().mute; }
    isForcedMute() { return this._getData().forcedMute; }
    muteParticipant(callbacks) { this._call("muteParticipant", callbacks); }
    unmuteParticipant(callbacks) { this._call("unmuteParticipant", callbacks); }
  }

  class ConnectionSnapshot extends VoiceConnection {
    constructor(connectionData, contactId) {
      super(contactId || connectionData.contactId, connectionData.connectionId);
      this.connectionData = connectionData;
    }
    _getData() { return this.connectionData; }
  }

  // ---------------------------------------------------------------- ccphost's own event subscription

  const subscriptions = new Set();
  function stopSubscriptions() {
    for (const subscription of [...subscriptions]) subscription.unsubscribe();
  }

  /** One events token from the CCP (ccphost::events_token_request -> ccphost::events_token). */
  function requestEventsToken() {
    return new Promise((resolve, reject) => {
      const ask = () => {
        const sub = core.bus.subscribe("ccphost::events_token", (data) => {
          sub.unsubscribe();
          clearTimeout(timer);
          if (isObject(data) && typeof data.token === "string" && typeof data.url === "string") resolve(data);
          else reject(new StateError("The CCP gave no events token: %s", (data && data.error) || "no answer"));
        });
        const timer = setTimeout(() => {
          sub.unsubscribe();
          reject(new StateError("The CCP did not answer the events token request"));
        }, core.params.ccpAckTimeout * 3);
        sendUpstream("ccphost::events_token_request", null);
      };
      if (core.initialized) ask();
      else {
        const sub = core.bus.subscribe(EventType.INIT, () => {
          sub.unsubscribe();
          ask();
        });
      }
    });
  }

  /**
   * ccphost's addition: live agent and contact events of the signed-in agent, each once and in
   * order, from /ws/events/<alias>/ (see the README). `callback(event)` gets
   * {seq, stream, eventType, eventId, record, attributes}. Options: after (a seq already seen),
   * onError(message). Reconnects with backoff and resumes after the last event.
   */
  function subscribe(callback, options) {
    if (!isFunction(callback)) throw new ValueError("connect.ccphost.subscribe: callback must be a function");
    if (options !== undefined && !isObject(options)) throw new ValueError("connect.ccphost.subscribe: options must be an object like {after: 0}");
    const opts = options || {};
    if (opts.after !== undefined && !(Number.isInteger(opts.after) && opts.after >= 0)) {
      throw new ValueError("connect.ccphost.subscribe: options.after must be a whole number, not %j", opts.after);
    }
    if (opts.onError !== undefined && !isFunction(opts.onError)) throw new ValueError("connect.ccphost.subscribe: options.onError must be a function");
    if (!core.iframe) throw new StateError("connect.ccphost.subscribe: call connect.core.initCCP first");
    let lastSeq = opts.after || 0;
    let socket = null;
    let retries = 0;
    let timer = null;
    let stopped = false;
    const fail = (message) => {
      log.warn("ccphost events: %s", message);
      if (opts.onError) opts.onError(message);
    };
    const retry = () => {
      if (stopped) return;
      const delay = Math.min(30000, 500 * 2 ** Math.min(retries, 6)) * (0.5 + Math.random() / 2);
      retries += 1;
      timer = setTimeout(open, delay);
    };
    function open() {
      if (stopped) return;
      requestEventsToken().then((grant) => {
        if (stopped) return;
        const url = new URL(grant.url);
        url.searchParams.set("token", grant.token);
        url.searchParams.set("after", String(lastSeq));
        socket = new WebSocket(url.href);
        socket.onmessage = (message) => {
          let frame;
          try {
            frame = JSON.parse(message.data);
          } catch {
            return fail("the events socket sent a frame that is not JSON");
          }
          if (frame.type === "subscribed") retries = 0;
          else if (frame.type === "error") fail(frame.message);
          else if (frame.type === "event" && frame.seq > lastSeq) {
            lastSeq = frame.seq;
            try {
              callback(frame);
            } catch (error) {
              log.error("A connect.ccphost.subscribe callback failed").withException(error);
            }
          }
        };
        socket.onclose = () => {
          socket = null;
          retry();
        };
      }, (error) => {
        fail(error.message);
        retry();
      });
    }
    const subscription = {
      get lastSeq() { return lastSeq; },
      unsubscribe() {
        stopped = true;
        clearTimeout(timer);
        if (socket) socket.close();
        subscriptions.delete(subscription);
      },
    };
    subscriptions.add(subscription);
    open();
    return subscription;
  }

  // ---------------------------------------------------------------- the public object

  function rootAgent(f) {
    if (!isFunction(f)) throw new ValueError("connect.agent: the callback must be a function");
    const sub = core.bus.subscribe(AgentEvents.INIT, f);
    if (connect.agent.initialized) f(new Agent());
    return sub;
  }
  rootAgent.initialized = false;

  Object.assign(connect, {
    version: VERSION,
    agent: rootAgent,
    contact(f) {
      if (!isFunction(f)) throw new ValueError("connect.contact: the callback must be a function");
      return core.bus.subscribe(ContactEvents.INIT, f);
    },
    core: {
      initCCP,
      terminate,
      getEventBus: () => core.bus,
      getAgentDataProvider: () => provider(),
      getClient,
      getMasterClient() {
        if (!core.masterClient) throw new StateError("The connect core has not been initialized");
        return core.masterClient;
      },
      getUpstream: () => ({ sendUpstream, onUpstream: (event, f) => core.bus.subscribe(event, f) }),
      getContactEventName: contactEventName,
      getSkew: () => provider().getAgentData().snapshot.skew,
      getPortStreamId: () => core.portStreamId,
      onInitialized: (f) => core.bus.subscribe(EventType.INIT, f),
      onAuthFail: (f) => core.bus.subscribe(EventType.AUTH_FAIL, f),
      onAccessDenied: (f) => core.bus.subscribe(EventType.ACCESS_DENIED, f),
      onIframeRetriesExhausted: (f) => core.bus.subscribe(EventType.IFRAME_RETRIES_EXHAUSTED, f),
      onViewContact: (f) => core.bus.subscribe(ContactEvents.VIEW, f),
      viewContact: (contactId) => broadcast(ContactEvents.VIEW, { contactId: checkString(contactId, "contactId", "viewContact") }),
      get initialized() { return core.initialized; },
    },
    ccphost: { subscribe },
    getLog: () => log,
    hitch,
    sprintf,
    vsprintf,
    randomId,
    makeEnum,
    assertNotNull,
    Agent, AgentSnapshot, Contact, ContactSnapshot, Connection, VoiceConnection, ConnectionSnapshot, Endpoint,
    EventBus, Logger, LogEntry, LogLevel, LogComponent, BaseError, ValueError, StateError, NotImplementedError,
    AgentStateType, AgentStatusType: AgentStateType, AgentAvailStates, AgentErrorStates, EndpointType,
    AddressType: EndpointType, ConnectionType, ConnectionStateType, ConnectionStatusType: ConnectionStateType,
    ContactStateType, ContactStatusType: ContactStateType, ContactType, ContactInitiationMethod, ChannelType,
    MediaType, SoftphoneCallType, SoftphoneErrorTypes, EventType, AgentEvents, ContactEvents, ConfigurationEvents,
    CONTACT_ACTIVE_STATES: makeEnum(CONTACT_ACTIVE_STATES),
  });
  core.provider = new AgentDataProvider(core.bus);
  global.connect = connect;
})(typeof window !== "undefined" ? window : globalThis);
