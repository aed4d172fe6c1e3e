"""Scale-out under faults, with real processes: several uvicorn workers of ccphost on
PostgreSQL and Redis. A transfer between agents whose CCP sockets live on different workers;
a worker killed with SIGKILL; the Redis server restarted; PostgreSQL connections cut;
thousands of sockets dropped at once; a socket whose client stops reading; sockets idle
for 30 s.

These run in the scale-out pass (`make test-scaled`: DATABASE_URL and REDIS_URL set); the
embedded pass skips them."""

import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import websockets
from django.conf import settings
from django.db import connection
from django.test import Client
from websockets.asyncio.client import ClientConnection

from ccphost.engine import network, seed, services
from ccphost.engine.models import Agent, AgentState, Queue
from ccphost.engine.models import CcpSocket as CcpSocketRow
from ccphost.engine.snapshots import snapshot_frame
from ccphost.instances.models import Instance

ROOT = Path(__file__).resolve().parents[1]
CALLER = "+15555550123"


def needs_scale_out() -> None:
    if connection.vendor != "postgresql" or not getattr(settings, "REDIS_URL", None):
        pytest.skip("runs in the scale-out pass (make test-scaled: PostgreSQL and Redis)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.3).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def database_url() -> str:
    db = connection.settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}/{db['NAME']}"


class Worker:
    """One ccphost ASGI process (uvicorn, ccphost.serve), as `make run-scaled` starts them."""

    def __init__(self, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_url = redis_url
        self.log = log  # the process's stderr
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Worker":
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": self.redis_url,
            "DEBUG": "1",
            "SITE_URL": self.url,
            "CCPHOST_BACKGROUND_DELIVERY": "0",
        }
        command = [sys.executable, "-m", "ccphost.serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        with self.log.open("ab") as stderr:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=stderr, start_new_session=True)
        wait_port(self.port)
        return self

    def errors(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_kib(self) -> int:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:  # a graceful shutdown still waiting on a connection
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class CcpSocket:
    """A CCP socket driven from synchronous test code."""

    def __init__(self, loop: asyncio.AbstractEventLoop, worker: Worker, session_key: str) -> None:
        self.loop = loop
        headers = {"Cookie": f"sessionid={session_key}", "Origin": worker.url}
        self.ws = loop.run_until_complete(
            websockets.connect(f"ws://127.0.0.1:{worker.port}/ws/ccp/acme/", additional_headers=headers)
        )
        self.snapshot: dict[str, Any] = {}
        self.answers: dict[str, Any] = {}
        self.requests = 0

    def wait(self, predicate: Callable[["CcpSocket"], bool], timeout: float = 15) -> None:
        async def until() -> None:
            while not predicate(self):
                frame = json.loads(await self.ws.recv())
                if frame.get("type") == "snapshot":
                    self.snapshot = frame["snapshot"]
                elif "requestId" in frame:
                    self.answers[frame["requestId"]] = frame

        self.loop.run_until_complete(asyncio.wait_for(until(), timeout))

    def request(self, method: str, params: dict[str, Any], expect_ok: bool = True) -> dict[str, Any]:
        """Send one API request and return its answer frame ({requestId, data} or {requestId, err})."""
        self.requests += 1
        request_id = f"r{self.requests}"
        self.loop.run_until_complete(
            self.ws.send(json.dumps({"requestId": request_id, "method": method, "params": params}))
        )
        self.wait(lambda s: request_id in s.answers)
        answer = self.answers.pop(request_id)
        if expect_ok:
            assert not answer.get("err"), answer
        return answer

    def contact_states(self) -> list[str]:
        return [c["state"]["type"] for c in self.snapshot.get("contacts", [])]

    def close(self) -> None:
        self.loop.run_until_complete(self.ws.close())


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def center(transactional_db, django_user_model) -> dict[str, Any]:
    needs_scale_out()
    instance = Instance.objects.create(alias="acme", name="Acme")
    seed.seed_instance_defaults(instance)
    agents = {name: seed.make_agent(instance, django_user_model.objects.create_user(name)) for name in ("ada", "bob")}
    sessions = {}
    for name, agent in agents.items():
        client = Client()
        client.force_login(agent.user)
        sessions[name] = client.cookies["sessionid"].value
    states = {s.name: s for s in AgentState.objects.filter(instance=instance)}
    return {"instance": instance, "agents": agents, "sessions": sessions, "states": states}


@pytest.fixture
def workers(center, tmp_path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(redis_url: str | None = None) -> Worker:
        worker = Worker(redis_url or settings.REDIS_URL, tmp_path / f"worker-{len(started) + 1}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill(signal.SIGTERM)
        # Shown with the test's output when it fails.
        sys.stderr.write(f"--- {worker.log.name} ---\n{worker.errors()}")


def state(name: str, type_: str) -> dict[str, Any]:
    """putAgentState's parameters for one of the seeded agent states."""
    return {"state": {"name": name, "type": type_}, "enqueueNextState": False}


def call(center: dict[str, Any]) -> None:
    queue = Queue.objects.get(instance=center["instance"], name=seed.BASIC_QUEUE)
    network.start_inbound_contact(center["instance"], queue, CALLER, {"orderId": "A-17"})


def test_transfer_between_agents_on_two_workers(center, workers, loop):
    first, second = workers(), workers()
    ada = CcpSocket(loop, first, center["sessions"]["ada"])
    bob = CcpSocket(loop, second, center["sessions"]["bob"])
    for sock in (ada, bob):
        sock.wait(lambda s: bool(s.snapshot))
    services.put_agent_state(center["agents"]["ada"], center["states"]["Available"])
    call(center)
    ada.wait(lambda s: s.contact_states() == ["connecting"])
    contact_id = ada.snapshot["contacts"][0]["contactId"]
    ada.request("acceptContact", {"contactId": contact_id})
    ada.wait(lambda s: s.contact_states() == ["connected"])

    bob.request("putAgentState", state("Available", "routable"))
    page = ada.request("getEndpoints", {"queueARNs": [], "nextToken": None, "maxResults": 100})
    endpoints = page["data"]["endpoints"]
    to_bob = next(e for e in endpoints if e["name"] == "Agent bob")
    ada.request("createAdditionalConnection", {"contactId": contact_id, "endpoint": to_bob})
    # A blind transfer: Ada goes to after-call work, and the offer reaches Bob's socket on
    # the other worker through Redis.
    ada.wait(lambda s: s.snapshot["state"]["name"] == "AfterCallWork")
    bob.wait(lambda s: s.contact_states() in (["connecting"], ["incoming"]))
    bob.request("acceptContact", {"contactId": bob.snapshot["contacts"][0]["contactId"]})
    bob.wait(lambda s: s.contact_states() == ["connected"])
    customer = next(c for c in bob.snapshot["contacts"][0]["connections"] if c["type"] == "inbound")
    assert customer["endpoint"]["phoneNumber"] == CALLER
    ada.close()
    bob.close()


def test_killed_worker_loses_its_sockets_not_the_state(center, workers, loop):
    first, second = workers(), workers()
    ada = CcpSocket(loop, second, center["sessions"]["ada"])
    ada.wait(lambda s: bool(s.snapshot))
    ada.request("putAgentState", state("Available", "routable"))
    ada.wait(lambda s: s.snapshot["state"]["name"] == "Available")
    second.kill(signal.SIGKILL)
    # While the agent reconnects, a call arrives; on the surviving worker the agent's socket
    # starts from the latest snapshot, so nothing is missing.
    call(center)
    again = CcpSocket(loop, first, center["sessions"]["ada"])
    again.wait(lambda s: s.contact_states() == ["connecting"])
    again.request("acceptContact", {"contactId": again.snapshot["contacts"][0]["contactId"]})
    again.wait(lambda s: s.contact_states() == ["connected"])
    again.close()


def test_redis_restart_is_survived(center, workers, loop, tmp_path):
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(tmp_path)]
    redis = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        worker = workers(f"redis://127.0.0.1:{port}/0")
        ada = CcpSocket(loop, worker, center["sessions"]["ada"])
        ada.wait(lambda s: bool(s.snapshot))
        redis.kill()
        redis.wait(10)
        redis = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_port(port)
        # Changes made elsewhere still reach the socket (the layer reconnects; the worker's
        # database watcher covers the gap), and the socket's own requests still work.
        services.put_agent_state(center["agents"]["ada"], center["states"]["Available"])
        ada.wait(lambda s: s.snapshot["state"]["name"] == "Available", timeout=20)
        ada.request("putAgentState", state("Break", "not_routable"))
        ada.wait(lambda s: s.snapshot["state"]["name"] == "Break")
        ada.close()
    finally:
        redis.kill()
        redis.wait(10)


def test_cut_database_connections_are_reopened(center, workers, loop):
    worker = workers()
    ada = CcpSocket(loop, worker, center["sessions"]["ada"])
    ada.wait(lambda s: bool(s.snapshot))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    # The first request after the cut may meet the dead connection; it is answered with an
    # error frame, never a crash, and the next one works on a new connection.
    available = state("Available", "routable")
    if ada.request("putAgentState", available, expect_ok=False).get("err"):
        ada.request("putAgentState", available)
    ada.wait(lambda s: s.snapshot["state"]["name"] == "Available")
    assert Agent.objects.get(pk=center["agents"]["ada"].pk).status.name == "Available"
    ada.close()


def raise_open_files_limit(wanted: int) -> None:
    """Room for `wanted` descriptors, here and in the workers started after (they inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted), hard))


def session_of(center: dict[str, Any], django_user_model: Any, name: str) -> str:
    """The session key of a signed-in agent `name`, made an agent of the instance if needed."""
    if name not in center["sessions"]:
        user = django_user_model.objects.create_user(name)
        center["agents"][name] = seed.make_agent(center["instance"], user)
        client = Client()
        client.force_login(user)
        center["sessions"][name] = client.cookies["sessionid"].value
    return str(center["sessions"][name])


async def open_websocket(worker: Worker, session_key: str, **options: Any) -> ClientConnection:
    """A CCP socket opened from async code; returns once its first snapshot has arrived."""
    headers = {"Cookie": f"sessionid={session_key}", "Origin": worker.url}
    options = {"compression": None, "ping_interval": None, "open_timeout": 60, **options}
    ws = await websockets.connect(f"ws://127.0.0.1:{worker.port}/ws/ccp/acme/", additional_headers=headers, **options)
    while json.loads(await ws.recv()).get("type") != "snapshot":
        pass
    return ws


async def open_crowd(places: list[tuple[Worker, str]], at_once: int = 64) -> list[ClientConnection]:
    gate = asyncio.Semaphore(at_once)

    async def one(worker: Worker, session_key: str) -> ClientConnection:
        async with gate:
            return await open_websocket(worker, session_key)

    return list(await asyncio.gather(*(one(worker, key) for worker, key in places)))


class Subscriptions:
    """What the workers' channel layers subscribe to in Redis: a channel per socket, and a group
    channel per agent with a socket in that worker (RedisPubSubChannelLayer)."""

    def __init__(self) -> None:
        self.redis = redis.Redis.from_url(settings.REDIS_URL)
        self.prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]

    def channels(self) -> set[str]:
        return {name.decode() for name in self.redis.pubsub_channels(f"{self.prefix}*")}

    def group(self, agent: Agent) -> str:
        return f"{self.prefix}__group__{agent.group_name}"

    def workers_in_group(self, agent: Agent) -> int:
        return int(self.redis.pubsub_numsub(self.group(agent))[0][1])


def socket_rows() -> list[str]:
    """The channel names of the open CCP sockets every process knows of."""
    return list(CcpSocketRow.objects.order_by("pk").values_list("channel_name", flat=True))


def wait_until(condition: Callable[[], bool], loop: asyncio.AbstractEventLoop, timeout: float) -> float:
    """Poll `condition` while the client loop runs (its sockets answer pings), for at most
    `timeout` seconds; how long it took. The caller asserts the outcome, with its details."""
    start = time.monotonic()
    while not condition() and time.monotonic() - start < timeout:
        loop.run_until_complete(asyncio.sleep(0.2))
    return time.monotonic() - start


def snapshots_within(ws: ClientConnection, loop: asyncio.AbstractEventLoop, seconds: float) -> list[dict[str, Any]]:
    """The snapshot frames a socket receives in the next `seconds`."""

    async def collect() -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), left))
            except TimeoutError:
                break
            if frame.get("type") == "snapshot":
                frames.append(frame)
        return frames

    return loop.run_until_complete(collect())


def assert_no_server_errors(*started: Worker) -> None:
    for worker in started:
        log = worker.errors()
        for sign in ("ERROR", "Traceback", "MaxConnectionsError", "Exception in ASGI application"):
            assert sign not in log, f"{worker.log.name}:\n{log}"


CROWD = 2000  # sockets dropped at once, over two workers and four agents


def test_a_crowd_of_sockets_dropped_at_once_leaves_nothing_behind(center, workers, loop, django_user_model):
    raise_open_files_limit(4 * CROWD + 1024)
    first, second = workers(), workers()
    names = ["ada", "bob", "carl", "dora"]
    sessions = [session_of(center, django_user_model, name) for name in names]
    agents = [center["agents"][name] for name in names]
    survivor = CcpSocket(loop, first, center["sessions"]["ada"])
    survivor.wait(lambda s: bool(s.snapshot))
    # Many sockets of the same session (tabs of one browser): no MultipleCcpWindows.
    started = time.monotonic()
    crowd = loop.run_until_complete(open_crowd([((first, second)[i // 4 % 2], sessions[i % 4]) for i in range(CROWD)]))
    opened_in = time.monotonic() - started
    redis_side = Subscriptions()
    rows = socket_rows()
    assert len(rows) == CROWD + 1
    assert redis_side.channels() == set(rows) | {redis_side.group(agent) for agent in agents}
    assert [redis_side.workers_in_group(agent) for agent in agents] == [2, 2, 2, 2]

    # All dropped at once, without a closing handshake, while the workers are pushing new
    # snapshots to three of the four agents: many sockets are gone by the time theirs is sent.
    for agent in agents[1:]:
        services.put_agent_state(agent, center["states"]["Break"])
    for ws in crowd:
        ws.transport.abort()
    closed_in = wait_until(lambda: len(socket_rows()) == 1, loop, 60)
    assert len(socket_rows()) == 1, f"{len(socket_rows()) - 1} dropped sockets still have their row"
    survivor_channel = socket_rows()[0]
    left = {survivor_channel, redis_side.group(agents[0])}
    wait_until(lambda: redis_side.channels() == left, loop, 15)
    assert redis_side.channels() == left
    assert [redis_side.workers_in_group(agent) for agent in agents] == [1, 0, 0, 0]
    print(f"{CROWD} sockets opened in {opened_in:.1f} s, dropped and cleaned up in {closed_in:.1f} s")

    # Both workers still serve: a new socket gets its snapshot, a request its answer.
    for worker, name in ((first, "carl"), (second, "dora")):
        fresh = CcpSocket(loop, worker, center["sessions"][name])
        fresh.wait(lambda s: bool(s.snapshot))
        fresh.request("putAgentState", state("Available", "routable"))
        fresh.wait(lambda s: s.snapshot["state"]["name"] == "Available")
        fresh.close()
    # A change reaches the one remaining socket of its agent, exactly once.
    snapshots_within(survivor.ws, loop, 0.5)  # nothing pending
    services.put_agent_state(agents[0], center["states"]["Break"])
    frames = snapshots_within(survivor.ws, loop, 2)
    assert [frame["snapshot"]["state"]["name"] for frame in frames] == ["Break"]
    survivor.close()
    assert_no_server_errors(first, second)


def unread_socket(loop: asyncio.AbstractEventLoop, worker: Worker, session_key: str) -> ClientConnection:
    """A CCP socket whose client stops reading after its first snapshot: a small receive buffer
    and its transport paused, so that what the server sends piles up on the server's side."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", worker.port))
    ws = loop.run_until_complete(open_websocket(worker, session_key, sock=sock, max_size=None))
    ws.transport.pause_reading()
    return ws


def read_versions(ws: ClientConnection, loop: asyncio.AbstractEventLoop, until: int, timeout: float) -> list[int]:
    """Read again: the snapshot versions received until version `until`, the end of the
    connection or `timeout` seconds."""
    ws.transport.resume_reading()
    versions: list[int] = []

    async def read() -> None:
        while not versions or versions[-1] < until:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "snapshot":
                versions.append(frame["version"])

    with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
        loop.run_until_complete(asyncio.wait_for(read(), timeout))
    return versions


PUSHES = 600
# uvicorn's defaults: a ping 20 s after the handshake, the connection closed 20 s later unanswered.
KEEPALIVE_GIVES_UP_AFTER = 40


def test_a_socket_that_stops_reading_holds_back_only_itself(center, workers, loop):
    # A big snapshot (200 more agent states in its configuration), for pushes that fill buffers.
    AgentState.objects.bulk_create(
        AgentState(instance=center["instance"], name=f"Away, reason {n:03d}: " + "x" * 60, type="not_routable")
        for n in range(200)
    )
    services.configuration_changed(center["instance"])
    ada, bob_agent = center["agents"]["ada"], center["agents"]["bob"]
    frame_bytes = len(json.dumps(snapshot_frame(ada.pk)))
    assert frame_bytes > 40_000
    worker = workers()
    # Two of Ada's sockets stop reading: one reads again after the pushes, one only after
    # the server's keepalive gave up on it. Bob's socket on the same worker reads all along.
    resumed = unread_socket(loop, worker, center["sessions"]["ada"])
    abandoned_at = time.monotonic()
    abandoned = unread_socket(loop, worker, center["sessions"]["ada"])
    bob = CcpSocket(loop, worker, center["sessions"]["bob"])
    bob.wait(lambda s: bool(s.snapshot))
    rss_before = worker.rss_kib()
    round_trips = []
    for push in range(PUSHES):
        services.put_agent_state(ada, center["states"]["Break" if push % 2 else "Available"])
        if push % 25 == 0:
            name = "Lunch" if push % 50 else "Available"
            started = time.monotonic()
            bob.request("putAgentState", state(name, "routable" if name == "Available" else "not_routable"))
            bob.wait(lambda s, name=name: s.snapshot["state"]["name"] == name, timeout=10)
            round_trips.append(time.monotonic() - started)
    growth_kib = worker.rss_kib() - rss_before
    latest = Agent.objects.get(pk=ada.pk).snapshot_version
    print(
        f"{PUSHES} pushes of {frame_bytes / 1000:.0f} kB to two unread sockets:"
        f" worker RSS +{growth_kib / 1024:.1f} MiB;"
        f" Bob's {len(round_trips)} round trips at most {max(round_trips) * 1000:.0f} ms"
    )
    assert max(round_trips) < 2
    # Had each push waited in memory for the unread sockets, that would be 2 x 600 x 58 kB.
    assert growth_kib < 15 * 1024

    # Read again: what the buffers held, then the latest version, not every push since.
    versions = read_versions(resumed, loop, until=latest, timeout=30)
    assert versions and versions[-1] == latest, versions[-5:]
    assert len(versions) < PUSHES / 4
    print(f"the socket read again got {len(versions)} snapshots, the last one version {latest}")

    # The other one is closed by the server's keepalive; once its connection ends, its row,
    # channel and group membership go, and nothing is left sending to it.
    wait_until(lambda: False, loop, KEEPALIVE_GIVES_UP_AFTER + 8 - (time.monotonic() - abandoned_at))
    abandoned.transport.resume_reading()
    with pytest.raises(websockets.ConnectionClosedError) as closed:
        loop.run_until_complete(asyncio.wait_for(read_all(abandoned), 30))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011  # keepalive ping timeout
    redis_side = Subscriptions()
    open_ones = 2  # the one read again and Bob's
    wait_until(lambda: len(socket_rows()) == open_ones, loop, 15)
    assert len(socket_rows()) == open_ones
    assert redis_side.channels() == set(socket_rows()) | {redis_side.group(ada), redis_side.group(bob_agent)}
    rss_after = worker.rss_kib()
    wait_until(lambda: False, loop, 3)
    assert worker.rss_kib() - rss_after < 1024  # nothing keeps growing
    loop.run_until_complete(resumed.close())
    bob.close()
    assert_no_server_errors(worker)


async def read_all(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


IDLE_SECONDS = 30


def test_idle_sockets_on_two_workers_still_get_changes(center, workers, loop):
    first, second = workers(), workers()
    ada = CcpSocket(loop, first, center["sessions"]["ada"])
    bob = CcpSocket(loop, second, center["sessions"]["bob"])
    for sock in (ada, bob):
        sock.wait(lambda s: bool(s.snapshot))
    # Nothing for 30 s: no frame either way (the WebSocket pings aside), so the channel layer's
    # Redis connections sit idle past redis-py's default 5 s socket_timeout.
    loop.run_until_complete(asyncio.sleep(IDLE_SECONDS))
    assert snapshots_within(ada.ws, loop, 0.3) == [] and snapshots_within(bob.ws, loop, 0.3) == []
    # A change made through a socket on the other worker reaches each idle socket.
    for idle, other, name in ((ada, second, "ada"), (bob, first, "bob")):
        elsewhere = CcpSocket(loop, other, center["sessions"][name])
        elsewhere.wait(lambda s: bool(s.snapshot))
        elsewhere.request("putAgentState", state("Lunch", "not_routable"))
        idle.wait(lambda s: s.snapshot["state"]["name"] == "Lunch")
        elsewhere.close()
    # And each idle socket still answers its own requests.
    for idle in (ada, bob):
        idle.request("putAgentState", state("Available", "routable"))
        idle.wait(lambda s: s.snapshot["state"]["name"] == "Available")
        idle.close()
    assert_no_server_errors(first, second)
