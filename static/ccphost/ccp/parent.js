// The CCP's side of the postMessage protocol with its parent page, origin-checked both ways.

/** The embedding page's origin as the browser reports it; null when unknown. */
function findParentOrigin() {
  const ancestors = window.location.ancestorOrigins;
  if (ancestors && ancestors.length > 0) return ancestors[0];
  try {
    return document.referrer ? new URL(document.referrer).origin : null;
  } catch {
    return null;
  }
}

export class ParentChannel {
  /**
   * @param {string[]} approvedOrigins origins approved for this instance
   */
  constructor(approvedOrigins) {
    this.framed = window.parent !== window;
    this.origin = this.framed ? findParentOrigin() : null;
    const allowed = new Set([window.location.origin, ...approvedOrigins]);
    this.approved = this.framed && this.origin !== null && allowed.has(this.origin);
    /** @type {Map<string, (data: any) => void>} */
    this.handlers = new Map();
    window.addEventListener("message", (message) => this.receive(message));
  }

  /** Post one message to the parent, only ever at its exact approved origin. */
  post(event, data = null) {
    if (!this.approved) return;
    window.parent.postMessage({ event, data }, this.origin);
  }

  on(event, handler) {
    this.handlers.set(event, handler);
  }

  receive(message) {
    if (!this.approved || message.source !== window.parent || message.origin !== this.origin) return;
    const payload = message.data;
    if (!payload || typeof payload !== "object" || typeof payload.event !== "string") return;
    const handler = this.handlers.get(payload.event);
    if (handler) handler(payload.data);
  }
}
