"""ccphost's benchmark: CCP sockets, snapshot fan-out, API round trips, the bare-Channels
floor, and the time to ring in a Chromium host page, against a real server on loopback.
Bounded in time and count; prints a table and writes JSON.

    python -m bench.run --mode embedded            # SQLite, embedded layer, 1 worker
    python -m bench.run --mode scaled --workers 2  # PostgreSQL, Redis, 2 workers
    python -m bench.run --quick                    # seconds, small counts (CI)
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parent.parent
SITE = "http://127.0.0.1:{port}"


@dataclass
class Phase:
    name: str
    sent: int = 0
    received: int = 0
    superseded: int = 0  # snapshots a later version replaced before they left (a slow socket)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        return {
            "name": self.name,
            "sent": self.sent,
            "received": self.received,
            "superseded": self.superseded,
            "lost": max(0, self.sent - self.received - self.superseded),
            "seconds": round(self.seconds, 2),
            "per_second": round(self.received / self.seconds, 1) if self.seconds else None,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(lat[-1], 2) if lat else None,
            **self.extra,
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mode_env(mode: str, var_dir: Path, port: int, layer: str) -> dict[str, str]:
    # Production settings (DEBUG off: no query log), but plain HTTP on loopback.
    env = {
        **os.environ,
        "CCPHOST_VAR_DIR": str(var_dir),
        "DEBUG": "0",
        "SECRET_KEY": "ccphost-bench-only-" + "0123456789" * 4,
        "SITE_URL": SITE.format(port=port),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "CCPHOST_ALLOW_HTTP_LOOPBACK": "1",
        "CCPHOST_MANIFEST_STATIC": "0",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_LAYER": layer,
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    if mode == "scaled":
        env["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ccphost_bench")
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    return env


def with_children(pid: int) -> list[int]:
    """A process and its descendants (a server's workers, an embedded server's engine process)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids += with_children(int(child))
    return pids


def is_engine_process(pid: int) -> bool:
    """Whether ``pid`` is an embedded server's engine process (ccphost.engine.process)."""
    try:
        return b"ccphost.engine.process" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children, in KiB."""
    total = 0
    for p in with_children(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def process_name(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_ticks(path: Path) -> int:
    """User plus system CPU of a process or thread, in clock ticks, from its ``stat``."""
    fields = path.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> list[int]:
    """The machine's CPU time so far, in clock ticks, from ``/proc/stat``'s ``cpu`` line:
    user, nice, system, idle, iowait, irq, softirq, steal (empty where there is none)."""
    with contextlib.suppress(OSError):
        return [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return []


def machine_share(before: list[int], after: list[int]) -> dict[str, float]:
    """How the machine's CPUs spent a phase, in percent: busy (not idle, not waiting for
    disks), and stolen by the hypervisor (a virtual machine's CPU given to another guest:
    the same code then goes slower, so a run with much steal is not comparable)."""
    if len(before) < 8 or len(after) < 8:
        return {}
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent) or 1
    idle, stolen = spent[3] + spent[4], spent[7]
    return {"busy_pct": round(100 * (total - idle - stolen) / total, 1), "steal_pct": round(100 * stolen / total, 1)}


class CpuMeter:
    """CPU spent during a phase, in milliseconds per delivery: by the server's threads,
    grouped by their Python names with the numbering dropped (``ccphost-engine_0`` and
    ``ccphost-engine_1`` are ``ccphost-engine``; the event loop is ``MainThread``), and by
    PostgreSQL's and Redis's processes (every one of the machine's: the bench is meant to run
    alone). Read from ``/proc``, so Linux only; elsewhere it reports nothing."""

    def __init__(self, server: "Server") -> None:
        self.server = server
        self.names: dict[int, str] = {}  # native thread id: Python name (bench.app's /bench/threads)

    async def learn_names(self, port: int) -> None:
        """Ask the server's processes for their threads' names (each request reaches one
        worker; a few reach them all). Threads start lazily: asked at the end of each phase."""
        for _ in range(4 * self.server.workers):
            threads = json.loads(await post_json(port, "/bench/threads", {}))["threads"]
            self.names.update((int(tid), name.rstrip("0123456789").rstrip("_-")) for tid, name in threads.items())

    def read(self) -> dict[tuple[str, int], tuple[str, int]]:
        """Ticks of every thread of the server's processes and of every PostgreSQL and Redis
        process: {(kind, id): (name, ticks)}."""
        ticks: dict[tuple[str, int], tuple[str, int]] = {}
        for pid in with_children(self.server.process.pid):
            # The engine process's threads by where they run: its calls on its main thread.
            engine = is_engine_process(pid)
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with contextlib.suppress(OSError, ValueError):
                        tid = int(task.name)
                        label = "" if not engine else "engine process" if tid == pid else "engine process, other"
                        ticks[("thread", tid)] = (label, cpu_ticks(task / "stat"))
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (name := process_name(entry.name)).startswith(("postgres", "redis")):
                with contextlib.suppress(OSError, ValueError):
                    ticks[("process", int(entry.name))] = (name.split(":")[0].split("-")[0], cpu_ticks(entry / "stat"))
        return ticks

    def per_delivery(self, before: dict[tuple[str, int], tuple[str, int]], count: int) -> dict[str, float]:
        if not count or not Path("/proc/self/stat").exists():
            return {}
        after, spent = self.read(), Counter[str]()
        for key, (name, ticks) in after.items():
            kind, ident = key
            label = (name or self.names.get(ident, "other thread")) if kind == "thread" else name
            spent[label] += ticks - before.get(key, ("", 0))[1]
        per_tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
        return {label: round(t * per_tick_ms / count, 3) for label, t in spent.most_common() if t > 0}


class Server:
    def __init__(self, env: dict[str, str], port: int, workers: int, deflate: bool = False) -> None:
        # As `make run` serves (ccphost.serve: its WebSocket settings), the bench's app.
        command = [sys.executable, "-m", "ccphost.serve", "bench.app:application", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
        command += ["--backlog", "16384"]
        if deflate:
            command += ["--ws-per-message-deflate", "true"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        self.port = port
        self.workers = workers

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the bench server did not start")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


async def post_json(port: int, path: str, body: dict[str, Any]) -> bytes:
    """POST ``body``; the response's body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    writer.write(head.encode() + f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    await writer.drain()
    response = await reader.read()
    writer.close()
    return response.partition(b"\r\n\r\n")[2]


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# The bench's sockets behave as a browser's: no keepalive pings of their own (websockets
# sends one every 20 s by default: 500 a second at 10,000 sockets, each answered by the
# server). They answer the server's pings, as browsers do.
AS_A_BROWSER: dict[str, Any] = {"open_timeout": 60, "ping_interval": None}


class CcpClient:
    """One CCP socket of one agent: counts snapshots and answers, measures latencies."""

    def __init__(self, port: int, agent_pk: int, session_key: str) -> None:
        self.port, self.agent_pk, self.session_key = port, agent_pk, session_key
        self.phase: Phase | None = None
        self.answers: dict[str, asyncio.Future[float]] = {}
        self.ready = asyncio.Event()
        self.ws: Any = None
        self.version = 0  # of the last snapshot received

    async def connect(self) -> None:
        headers = {"Cookie": f"sessionid={self.session_key}", "Origin": SITE.format(port=self.port)}
        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/ws/ccp/bench/", additional_headers=headers, max_size=2**20, **AS_A_BROWSER
        )
        self.reader = asyncio.create_task(self.read())
        await asyncio.wait_for(self.ready.wait(), 60)

    async def read(self) -> None:
        async for raw in self.ws:
            arrived = time.time()
            frame = json.loads(raw)
            if frame.get("type") == "snapshot":
                previous, self.version = self.version, frame["version"]
                if not self.ready.is_set():
                    self.ready.set()
                elif self.phase is not None:
                    self.phase.received += 1
                    # Versions skipped: the socket sends only the newest of the snapshots
                    # waiting for it (consumers.CcpConsumer.ccp_snapshot), none is lost.
                    self.phase.superseded += max(0, self.version - previous - 1)
                    sent = parse_time(frame["snapshot"]["snapshotTimestamp"])
                    self.phase.latencies_ms.append((arrived - sent) * 1000)
            elif "requestId" in frame and frame["requestId"] in self.answers:
                future = self.answers.pop(frame["requestId"])
                if not future.done():  # a request that already timed out is counted as lost
                    future.set_result(arrived)

    async def request(self, request_id: str, method: str, params: dict[str, Any]) -> float:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.answers[request_id] = future
        started = time.time()
        await self.ws.send(json.dumps({"requestId": request_id, "method": method, "params": params}))
        return (await asyncio.wait_for(future, 30) - started) * 1000


class FloorClient:
    def __init__(self, port: int, group: int) -> None:
        self.port, self.group = port, group
        self.phase: Phase | None = None

    async def connect(self) -> None:
        headers = {"Origin": SITE.format(port=self.port)}
        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/ws/floor/{self.group}/", additional_headers=headers, **AS_A_BROWSER
        )
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        async for raw in self.ws:
            arrived = time.time()
            if self.phase is not None:
                self.phase.received += 1
                self.phase.latencies_ms.append((arrived - json.loads(raw)["sentAt"]) * 1000)


async def connect_all(clients: list[Any], concurrency: int = 200) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(client: Any) -> None:
        async with gate:
            await client.connect()

    started = time.monotonic()
    await asyncio.gather(*(one(c) for c in clients))
    return time.monotonic() - started


async def drive(port: int, phase: Phase, rate: int, seconds: float, key: str, targets: list[Any]) -> None:
    """Trigger ``rate`` deliveries per second for ``seconds``, in 20 ms ticks, round robin."""
    tick = 0.02
    per_tick = max(1, round(rate * tick))
    position = 0
    started = time.monotonic()
    pending: set[asyncio.Task[bytes]] = set()
    while time.monotonic() - started < seconds:
        batch = [targets[(position + i) % len(targets)] for i in range(per_tick)]
        position += per_tick
        phase.sent += len(batch)
        task = asyncio.create_task(post_json(port, "/bench/trigger", {key: batch}))
        pending.add(task)
        task.add_done_callback(pending.discard)
        await asyncio.sleep(max(0.0, started + (position / per_tick) * tick - time.monotonic()))
    await asyncio.gather(*pending)
    drain_until = time.monotonic() + 5
    while phase.received + phase.superseded < phase.sent and time.monotonic() < drain_until:
        await asyncio.sleep(0.05)
    phase.seconds = time.monotonic() - started


async def api_round_trips(clients: list[CcpClient], rate: int, seconds: float) -> Phase:
    phase = Phase("api_round_trip")
    states = [{"name": "Break"}, {"name": "Lunch"}]
    counter = 0

    async def one(client: CcpClient, n: int) -> None:
        state = dict(states[n % 2], type="not_routable")
        try:
            phase.latencies_ms.append(await client.request(f"b{n}", "putAgentState", {"state": state}))
            phase.received += 1
        except (TimeoutError, websockets.ConnectionClosed):
            pass

    started = time.monotonic()
    tasks = []
    while time.monotonic() - started < seconds:
        client = clients[counter % len(clients)]
        tasks.append(asyncio.create_task(one(client, counter)))
        counter += 1
        phase.sent += 1
        await asyncio.sleep(max(0.0, started + counter / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    phase.seconds = time.monotonic() - started
    phase.extra["rate_asked"] = rate
    return phase


# In the agent page (ccphost's host page, connect-streams.js): the agent's state, and when
# a contact first rang (onIncoming for a callback, onConnecting for a call).
WATCH_RINGS = """() => {
  window.benchRing = { state: null, rangAt: null };
  const rang = () => { window.benchRing.rangAt = window.benchRing.rangAt || Date.now() / 1000; };
  window.connect.agent((agent) => {
    window.benchRing.state = agent.getState().name;
    agent.onRefresh((a) => { window.benchRing.state = a.getState().name; });
  });
  window.connect.contact((contact) => { contact.onIncoming(rang); contact.onConnecting(rang); });
}"""


async def until(page: Any, expression: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await page.evaluate(expression)
        if value:
            return value
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{expression} stayed false for {timeout} s")


async def time_to_ring(port: int, pairs: list[list[Any]], count: int) -> dict[str, Any]:
    """Inbound calls to agents signed in to the agent page in Chromium: from the call's start
    in the server to the contact ringing in the page, one agent per call (each Available only
    for its own call)."""
    phase = Phase("time_to_ring")
    chromium = os.environ.get("CCPHOST_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        return {"name": phase.name, "skipped": "no Playwright (make test-deps)"}
    if not Path(chromium).exists():
        return {"name": phase.name, "skipped": "no Chromium (make test-deps)"}
    started = time.monotonic()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for agent_pk, session_key in pairs[:count]:
            context = await browser.new_context()
            await context.add_cookies([{"name": "sessionid", "value": session_key, "url": SITE.format(port=port)}])
            page = await context.new_page()
            await page.goto(SITE.format(port=port) + "/connect/bench/agent/")
            await page.evaluate(WATCH_RINGS)
            await post_json(port, "/bench/trigger", {"ring": agent_pk, "step": "available"})
            await until(page, "window.benchRing.state === 'Available'")
            phase.sent += 1
            answer = json.loads(await post_json(port, "/bench/trigger", {"ring": agent_pk, "step": "call"}))
            rang_at = await until(page, "window.benchRing.rangAt")
            phase.received += 1
            phase.latencies_ms.append((rang_at - answer["startedAt"]) * 1000)
            await context.close()
        await browser.close()
    phase.seconds = time.monotonic() - started
    return phase.summary()


async def phase_report(port: int, census: bool) -> dict[str, Any]:
    """What the server saw since the last call (bench.app): its cycle collections by
    generation and the longest (only where one process serves all the sockets: ``census``),
    and, with --watchdog, its event loop's stalls."""
    report: dict[str, Any] = {}
    if census:
        report["collections"] = json.loads(await post_json(port, "/bench/collections", {}))
        report["gc_max_ms"] = max((g["max_ms"] for g in report["collections"].values()), default=0.0)
    stalls = json.loads(await post_json(port, "/bench/stalls", {}))["stalls"]
    if stalls is not None:
        report["stalls"] = stalls
    return report


async def take_census(port: int) -> dict[str, Any]:
    """The objects the server's collector tracks, and a full collection of them (bench.app)."""
    census: dict[str, Any] = json.loads(await post_json(port, "/bench/census", {}))
    return census


async def closed_census(port: int, sockets: int, idle: dict[str, Any]) -> dict[str, Any]:
    """Once the server has let every closed CCP socket go (each close records a LOGOUT on
    the engine's thread, so that takes a while): what stays, against the census before the
    sockets connected (what first use leaves: caches, compiled queries; a leak if it grows
    with sockets), and the garbage in reference cycles a full collection freed (memory that
    only a collection returns)."""
    freed, previous, started = 0, None, time.monotonic()
    while True:
        await asyncio.sleep(3)
        after = await take_census(port)
        freed += after["freed"]
        now = after["tracked_after_collection"]
        if (previous is not None and previous - now < sockets) or time.monotonic() - started > 120:
            break
        previous = now
    return {
        "name": "ccp_sockets_closed",
        "sockets": sockets,
        "seconds": round(time.monotonic() - started, 1),
        "tracked_per_socket": round((now - idle["tracked_after_collection"]) / sockets, 1),
        "cyclic_garbage_per_socket": round(freed / sockets, 1),
        "full_collection_ms": after["full_collection_ms"],
        "most_tracked": after["types_after_collection"][:10],
    }


async def benchmark(
    args: argparse.Namespace, port: int, pairs: list[list[Any]], server: Server
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    idle_rss = rss_kib(server.process.pid)
    # One process's census: taken only where one process serves all the sockets.
    census = server.workers == 1
    idle_census = await take_census(port) if census else {}
    clients = [CcpClient(port, pk, key) for pk, key in pairs]
    connect_seconds = await connect_all(clients)
    await asyncio.sleep(1)
    held_rss = rss_kib(server.process.pid)
    connect_report = await phase_report(port, census)  # before the census and its own collection
    held_census = await take_census(port) if census else {}
    connected = {
        "name": "ccp_sockets_connected",
        "sockets": len(clients),
        "seconds": round(connect_seconds, 2),
        "per_second": round(len(clients) / connect_seconds, 1),
        "kib_per_socket": round((held_rss - idle_rss) / len(clients), 1),
    }
    if census:
        # What the cycle collector must look at for each socket, and how long a full
        # collection (which the interpreter runs now and then) stops the process for.
        connected["tracked_per_socket"] = round((held_census["tracked"] - idle_census["tracked"]) / len(clients), 1)
        connected["full_collection_ms"] = held_census["full_collection_ms"]
        connected["most_tracked"] = held_census["types"][:10]
    results.append(connected | connect_report)
    meter = CpuMeter(server)
    fanout = Phase("snapshot_fanout")
    for client in clients:
        client.phase = fanout
    before, machine = meter.read(), machine_ticks()
    await drive(port, fanout, args.rate, args.seconds, "agents", [c.agent_pk for c in clients])
    fanout.extra["machine"] = machine_share(machine, machine_ticks())
    await meter.learn_names(port)
    fanout.extra["cpu_ms_per_delivery"] = meter.per_delivery(before, fanout.received)
    fanout.extra["rate_asked"] = args.rate
    fanout.extra.update(await phase_report(port, census))
    for client in clients:
        client.phase = None
    results.append(fanout.summary())
    before, machine = meter.read(), machine_ticks()
    api = await api_round_trips(clients[: args.api_sockets], args.api_rate, args.seconds)
    api.extra["machine"] = machine_share(machine, machine_ticks())
    await meter.learn_names(port)
    api.extra["cpu_ms_per_request"] = meter.per_delivery(before, api.received)
    api.extra.update(await phase_report(port, census))
    results.append(api.summary())
    for client in clients:
        await client.ws.close()
    if census:
        results.append(await closed_census(port, len(clients), idle_census))

    floor_clients = [FloorClient(port, i) for i in range(len(pairs))]
    await connect_all(floor_clients)
    floor = Phase("floor_fanout")
    for floor_client in floor_clients:
        floor_client.phase = floor
    before, machine = meter.read(), machine_ticks()
    await drive(port, floor, args.rate, args.seconds, "floor", [c.group for c in floor_clients])
    floor.extra["machine"] = machine_share(machine, machine_ticks())
    await meter.learn_names(port)
    floor.extra["cpu_ms_per_delivery"] = meter.per_delivery(before, floor.received)
    floor.extra["rate_asked"] = args.rate
    results.append(floor.summary())
    for floor_client in floor_clients:
        await floor_client.ws.close()
    ccp, bare = results[1]["per_second"] or 0, floor.summary()["per_second"] or 1
    results.append({"name": "ccphost_vs_floor", "ratio": round(ccp / bare, 3)})
    results.append(await time_to_ring(port, pairs, args.rings))
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    columns = [
        "name",
        "sockets",
        "sent",
        "received",
        "superseded",
        "lost",
        "seconds",
        "per_second",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "kib_per_socket",
        "tracked_per_socket",
        "full_collection_ms",
        "gc_max_ms",
        "ratio",
        "skipped",
    ]
    print(" | ".join(f"{c:>14}" for c in columns))
    for row in results:
        print(" | ".join(f"{row.get(c, '') if row.get(c) is not None else '':>14}" for c in columns))
    for row in results:  # where the CPU went, per delivery (or request) of each phase
        for key in ("cpu_ms_per_delivery", "cpu_ms_per_request"):
            if row.get(key):
                spent = ", ".join(f"{label} {ms}" for label, ms in row[key].items())
                print(f"{row['name']}: ms of CPU per {key.removeprefix('cpu_ms_per_')}: {spent}")
        if row.get("machine"):
            machine = row["machine"]
            print(f"{row['name']}: the machine's CPUs: {machine['busy_pct']}% busy, {machine['steal_pct']}% stolen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["embedded", "scaled"], default="embedded")
    parser.add_argument("--workers", type=int, default=None, help="default: 1 embedded, 2 scaled")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1000, help="snapshot deliveries asked per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--api-rate", type=int, default=200)
    parser.add_argument("--api-sockets", type=int, default=200)
    parser.add_argument("--rings", type=int, default=10, help="calls for the time to ring, in Chromium")
    parser.add_argument(
        "--layer",
        choices=["default", "stock", "redis-core"],
        default="default",
        help="channel layer: ccphost's (default), Channels' stock in-memory one (embedded), "
        "or channels_redis' RedisChannelLayer instead of its pub/sub layer (scaled)",
    )
    parser.add_argument(
        "--watchdog",
        type=float,
        metavar="MS",
        help="sample every server thread's stack whenever its event loop is more than MS late, "
        "and write each such stall into the JSON",
    )
    parser.add_argument(
        "--ws-deflate",
        action="store_true",
        help="accept the clients' per-message compression, as uvicorn does by default (ccphost.serve does not)",
    )
    parser.add_argument("--quick", action="store_true", help="seconds and small counts, for CI")
    parser.add_argument("--output", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args()
    if args.quick:
        args.sockets, args.rate, args.seconds, args.api_rate, args.api_sockets, args.rings = 50, 100, 2, 50, 20, 2
    args.api_sockets = min(args.api_sockets, args.sockets)
    args.rings = min(args.rings, args.sockets)
    workers = args.workers or (1 if args.mode == "embedded" else 2)
    if args.mode == "embedded" and workers != 1:
        parser.error("the embedded mode has one process: its channel layer lives in that process")
    if (args.layer == "stock" and args.mode != "embedded") or (args.layer == "redis-core" and args.mode != "scaled"):
        parser.error(f"--layer {args.layer} does not go with --mode {args.mode}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.sockets + 1024)), hard))

    var_dir = Path(tempfile.mkdtemp(prefix="ccphost-bench-"))
    port = free_port()
    env = mode_env(args.mode, var_dir, port, args.layer)
    env.pop("BENCH_WATCHDOG_MS", None)
    if args.watchdog:
        env["BENCH_WATCHDOG_MS"] = str(args.watchdog)
    if args.mode == "scaled":
        subprocess.run([sys.executable, "tools/ensure_database.py"], cwd=ROOT, env=env, check=True)
    setup = subprocess.run(
        [sys.executable, "-m", "bench.setup_agents", str(args.sockets)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if setup.returncode:
        print(setup.stderr, file=sys.stderr)
        parser.exit(1, "bench: setting up the agents failed (above)\n")
    pairs = json.loads(setup.stdout.strip().splitlines()[-1])
    server = Server(env, port, workers, args.ws_deflate)
    try:
        server.wait_ready()
        results = asyncio.run(benchmark(args, port, pairs, server))
    finally:
        server.stop()
        shutil.rmtree(var_dir, ignore_errors=True)
    report = {
        "mode": args.mode,
        "layer": args.layer,
        "workers": workers,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.now().isoformat(timespec="seconds"),
        "args": {k: str(v) for k, v in vars(args).items()},
        "results": results,
    }
    print(f"ccphost bench: mode={args.mode} layer={args.layer} workers={workers}", end=" ")
    print(f"sockets={args.sockets} rate={args.rate}/s")
    print_table(results)
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / f"bench-{args.mode}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    lost = sum(r.get("lost", 0) for r in results)
    return 1 if lost and args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
