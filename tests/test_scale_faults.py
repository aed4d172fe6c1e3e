"""Scale-out under faults, with real processes: several uvicorn workers of ccphost on
PostgreSQL and Redis. A transfer between agents whose CCP sockets live on different workers;
a worker killed with SIGKILL; the Redis server restarted; PostgreSQL connections cut.

These run in the scale-out pass (`make test-scaled`: DATABASE_URL and REDIS_URL set); the
embedded pass skips them."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from django.conf import settings
from django.db import connection
from django.test import Client

from ccphost.engine import network, seed, services
from ccphost.engine.models import Agent, AgentState, Queue
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
    """One ccphost ASGI process (uvicorn), as `make run-scaled` starts them."""

    def __init__(self, redis_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_url = redis_url
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
        command = [sys.executable, "-m", "uvicorn", "ccphost.asgi:application", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        wait_port(self.port)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
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
def workers(center) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(redis_url: str | None = None) -> Worker:
        worker = Worker(redis_url or settings.REDIS_URL).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill(signal.SIGTERM)


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
