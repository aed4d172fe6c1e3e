// What the CCP shows for Amazon Connect's state names and error states.

export const ERROR_WORDS = {
  Error: "Something went wrong with the softphone.",
  AgentHungUp: "You hung up before the call connected.",
  BadAddressAgent: "Your phone number could not be reached. Check your extension.",
  BadAddressCustomer: "The number you dialed is not valid.",
  Default: "The call failed.",
  FailedConnectAgent: "The call could not be connected to you.",
  FailedConnectCustomer: "The call could not be connected to the customer.",
  InvalidLocale: "Your language setting is not supported.",
  LineEngagedAgent: "Your line is busy.",
  LineEngagedCustomer: "The customer's line is busy.",
  MissedCallAgent: "You missed a call. Set your status to Available to take calls.",
  MissedCallCustomer: "The customer did not answer the callback.",
  MultipleCcpWindows: "The CCP is open in another browser. Close it there to use it here.",
  RealtimeCommunicationError: "The voice connection failed.",
};

export const SYSTEM_WORDS = {
  Init: "Starting",
  Busy: "On a call",
  AfterCallWork: "After call work",
  CallingCustomer: "Calling customer",
  Dialing: "Dialing",
  Joining: "Joining",
  PendingAvailable: "Available after this contact",
  PendingBusy: "Busy",
};

export const CONTACT_WORDS = {
  incoming: "Incoming",
  pending: "Pending",
  connecting: "Incoming",
  connected: "Connected",
  missed: "Missed",
  error: "Failed",
  ended: "After call work",
  rejected: "Rejected",
  paused: "Paused",
};

/** "mm:ss" or "h:mm:ss" for a duration in milliseconds. */
export function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0");
  return `${h ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}
