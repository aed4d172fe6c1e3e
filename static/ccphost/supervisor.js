// The supervisor board: whole boards pushed by the server, durations ticking locally.
import { reconnectDelay } from "./ccp/socket.js";
import { formatDuration } from "./ccp/words.js";

const config = JSON.parse(document.getElementById("supervisor-config").textContent);
const statusEl = document.getElementById("board-status");
let board = null;
let skew = 0;
let retries = 0;

function cell(text, attrs = {}) {
  const td = document.createElement("td");
  td.textContent = text;
  for (const [k, v] of Object.entries(attrs)) td.setAttribute(k, v);
  return td;
}

function since(iso) {
  return iso ? formatDuration(Date.now() + skew - Date.parse(iso)) : "";
}

function render() {
  if (!board) return;
  document.querySelector("#queues tbody").replaceChildren(
    ...board.queues.map((q) => {
      const row = document.createElement("tr");
      row.append(cell(q.name), cell(String(q.waiting)), cell(since(q.oldestWaitSince), { "data-since": q.oldestWaitSince || "" }));
      return row;
    }),
  );
  document.querySelector("#agents tbody").replaceChildren(
    ...board.agents.map((a) => {
      const row = document.createElement("tr");
      row.className = `state-${a.stateType}`;
      row.dataset.username = a.username;
      row.append(
        cell(a.name),
        cell(a.stateName, { class: "state" }),
        cell(since(a.stateSince), { "data-since": a.stateSince || "" }),
        cell(String(a.contacts)),
        cell(a.routingProfile),
      );
      return row;
    }),
  );
}

function tick() {
  for (const el of document.querySelectorAll("[data-since]")) {
    if (el.dataset.since) el.textContent = since(el.dataset.since);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${config.socketPath}`);
  socket.addEventListener("open", () => {
    retries = 0;
    statusEl.textContent = "Live";
  });
  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "board") {
      board = frame;
      skew = Date.parse(frame.at) - Date.now();
      render();
      document.body.dataset.boardAt = frame.at;
    } else if (frame.type === "error") {
      statusEl.textContent = frame.message;
    }
  });
  socket.addEventListener("close", (closed) => {
    if (closed.code === 4403) return;
    statusEl.textContent = "Reconnecting…";
    const delay = reconnectDelay(retries);
    retries += 1;
    setTimeout(connect, delay);
  });
}

connect();
setInterval(tick, 1000);
