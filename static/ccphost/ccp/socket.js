// The CCP's WebSocket to ccphost: reconnects with backoff and jitter, resyncs from the
// latest (versioned, full) snapshot, answers API requests by requestId.

const TIMESTAMP_KEY = /(Timestamp|timestamp|timeStamp)$/;
const HEARTBEAT_MS = 20000;
const REQUEST_TIMEOUT_MS = 15000;
const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404, 4409]);
// Closed for sending too many frames (ccphost/ccp/ratelimit.py): wait at least this long
// before opening a new socket, which would start with a full allowance.
export const CLOSE_TOO_MANY_FRAMES = 4429;
const SLOW_DOWN_MS = 5000;

/** Exponential backoff with full jitter, capped at 30 s, for the n-th reconnection. */
export function reconnectDelay(retries) {
  return Math.random() * Math.min(30000, 500 * 2 ** retries);
}

/** JSON.parse reviver: timestamps travel as ISO strings and are Date objects in the CCP. */
function reviveTimestamps(key, value) {
  return typeof value === "string" && TIMESTAMP_KEY.test(key) ? new Date(value) : value;
}

export class CcpSocket extends EventTarget {
  constructor(path) {
    super();
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${window.location.host}${path}`;
    this.version = -1;
    this.retries = 0;
    this.pending = new Map();
    this.nextId = 1;
    this.closedForGood = false;
    this.connected = false;
  }

  open() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.retries = 0;
      this.connected = true;
      this.heartbeat = window.setInterval(() => this.sendFrame({ type: "heartbeat" }), HEARTBEAT_MS);
      this.emit("connected");
    });
    ws.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data, reviveTimestamps);
      } catch {
        return;
      }
      this.receive(frame);
    });
    ws.addEventListener("close", (closed) => this.onClose(closed));
  }

  onClose(closed) {
    window.clearInterval(this.heartbeat);
    const wasConnected = this.connected;
    this.connected = false;
    for (const [requestId, entry] of this.pending) {
      entry.reject({ type: "ConnectionLost", message: "The connection to ccphost was lost.", statusCode: 503 });
      this.pending.delete(requestId);
    }
    if (wasConnected) this.emit("lost", { code: closed.code });
    if (this.closedForGood || FINAL_CLOSE_CODES.has(closed.code)) {
      this.emit("closed", { code: closed.code, reason: closed.reason });
      return;
    }
    let delay = reconnectDelay(this.retries);
    if (closed.code === CLOSE_TOO_MANY_FRAMES) delay = Math.max(delay, SLOW_DOWN_MS);
    this.retries += 1;
    window.setTimeout(() => this.open(), delay);
  }

  close() {
    this.closedForGood = true;
    if (this.ws) this.ws.close(1000);
  }

  receive(frame) {
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "snapshot") {
      // Versions only grow: an old or repeated snapshot changes nothing.
      if (typeof frame.version !== "number" || frame.version <= this.version) return;
      this.version = frame.version;
      this.emit("snapshot", frame);
      return;
    }
    if (frame.requestId !== undefined && frame.requestId !== null && this.pending.has(frame.requestId)) {
      const entry = this.pending.get(frame.requestId);
      this.pending.delete(frame.requestId);
      window.clearTimeout(entry.timer);
      if (frame.err) entry.reject(frame.err);
      else entry.resolve(frame.data ?? null);
      return;
    }
    if (typeof frame.type === "string") this.emit(frame.type, frame);
  }

  /** Send an API request; resolves with its data or rejects with {type, message, statusCode}. */
  request(method, params = {}, requestId = `ccp-${this.nextId++}`) {
    return new Promise((resolve, reject) => {
      if (!this.connected) {
        reject({ type: "ConnectionLost", message: "The CCP is not connected to ccphost.", statusCode: 503 });
        return;
      }
      const timer = window.setTimeout(() => {
        this.pending.delete(requestId);
        reject({ type: "Timeout", message: `${method} got no answer in time.`, statusCode: 504 });
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(requestId, { resolve, reject, timer });
      this.sendFrame({ requestId, method, params });
    });
  }

  sendFrame(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  emit(type, detail = null) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
