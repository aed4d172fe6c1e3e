"""The ASGI app the benchmark serves: ccphost's own application plus two bench-only parts
that production never mounts:

- ``/ws/floor/<group>/``: a bare Channels consumer that joins a group and forwards group
  messages (dispatched as ccphost's are, without a database thread hop), the floor
  ccphost's CCP socket is compared with;
- ``POST /bench/trigger``: runs, inside the server process (where the embedded channel
  layer lives), either real engine service calls (``put_agent_state`` for each agent pk
  given) or bare ``group_send`` calls to floor groups, stamping the time of each call; or,
  for the time to ring, makes one agent Available or starts an inbound call;
- ``POST /bench/collections``: the cycle collector's collections since the last call, by
  generation: how many, and the longest and total time each generation stopped the
  process for;
- ``POST /bench/stalls``: with ``BENCH_WATCHDOG_MS`` set, each time since the last call that
  the event loop was late by more than that many milliseconds, with every thread's stack
  sampled while it was (``Watchdog``);
- ``POST /bench/threads``: this process's id and its threads' names by native id, which
  the bench uses to tell whose CPU each thread's counters in ``/proc`` are;
- ``POST /bench/census``: the objects the cycle collector tracks (all generations and the
  frozen ones), the most common types among them, and how long a full collection of them
  takes: what one socket costs the collector, and how long a full collection stops the
  process for.
"""

import asyncio
import gc
import json
import os
import sys
import threading
import time
import traceback
from collections import Counter
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from django.db import connection
from django.urls import path

from ccphost.asgi import application as ccphost_application
from ccphost.ccp.dispatch import DirectDispatchMixin
from ccphost.engine.process import running_engine
from ccphost.engine.threads import engine_sync_to_async, engine_threads


class FloorConsumer(DirectDispatchMixin, AsyncWebsocketConsumer):
    """Forwards its group's messages, with nothing else on the way: not even Channels'
    per-message database clean-up (ccp.dispatch), which ccphost's consumers skip too."""

    async def connect(self) -> None:
        self.group = f"floor.{self.scope['url_route']['kwargs']['group']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def floor_message(self, message: dict[str, Any]) -> None:
        await self.send(text_data=message["text"])


FLOOR_PAYLOAD = "x" * 2000  # about the size of an agent snapshot frame


BENCH_STATES: dict[str, Any] = {}  # the two statuses toggled, read once per process
BENCH_AGENTS: dict[int, Any] = {}  # each agent as a service call takes it (pk, instance), read once


def toggle_agent_states(agent_pks: list[int], statuses: dict[int, int] | None = None) -> None:
    """Toggle each agent between Break and Lunch, one service call each, from ``statuses``
    (status pks by agent pk, from toggle_ahead) or their statuses now."""
    from ccphost.engine.services import put_agent_state

    if not agent_pks:
        return
    statuses = statuses or toggle_ahead(agent_pks)
    lunch, pause = BENCH_STATES["Lunch"], BENCH_STATES["Break"]
    for pk in agent_pks:
        put_agent_state(BENCH_AGENTS[pk], lunch if statuses[pk] == pause.pk else pause)


def toggle_ahead(agent_pks: list[int]) -> dict[int, int]:
    """What toggle_agent_states needs of these agents, read together: the two statuses and
    each agent once per process, and each agent's status pk, fresh (other phases change
    them too). The trigger's own reads are kept small, as they share the engine's thread
    with the calls measured: reading the agents whole at every tick took 10% of that thread
    (py-spy), and reading each agent first in a call of its own, 40% (10,000 agents)."""
    from ccphost.engine.models import Agent, AgentState

    if not BENCH_STATES:
        BENCH_STATES.update(
            (s.name, s) for s in AgentState.objects.filter(instance__alias="bench", name__in=["Break", "Lunch"])
        )
    if missing := [pk for pk in agent_pks if pk not in BENCH_AGENTS]:
        BENCH_AGENTS.update((a.pk, a) for a in Agent.objects.select_related("instance").filter(pk__in=missing))
    return current_status_pks(agent_pks)


def current_status_pks(agent_pks: list[int]) -> dict[int, int]:
    """Each agent's status pk, in one statement written out: the ORM's compiling of even a
    small query took a fifth of the engine thread's time in the scale-out fan-out (py-spy
    --gil), time that is the harness's, not a service call's."""
    from ccphost.engine.models import Agent
    from ccphost.engine.prepared import placeholders

    meta = Agent._meta
    quote = connection.ops.quote_name
    pk, status = quote(meta.pk.column), quote(meta.get_field("status").column)
    sql = f"SELECT {pk}, {status} FROM {quote(meta.db_table)} WHERE {pk} IN ({placeholders(len(agent_pks))})"
    with connection.cursor() as cursor:
        cursor.execute(sql, agent_pks)
        return dict(cursor.fetchall())


async def floor_send(groups: list[str]) -> None:
    layer = get_channel_layer()
    for group in groups:
        text = json.dumps({"sentAt": time.time(), "payload": FLOOR_PAYLOAD})
        await layer.group_send(f"floor.{group}", {"type": "floor.message", "text": text})
        # Each send then goes out before the next is stamped, as ccphost's do (layers.Outbox):
        # the embedded layer's group send does not yield.
        await asyncio.sleep(0)


def ring(agent_pk: int, step: str) -> dict[str, Any]:
    """For the time-to-ring phase: make the agent Available, or start an inbound call to the
    bench's queue (the agent is then the only one free) and say when it started."""
    from ccphost.engine import network, seed
    from ccphost.engine.models import Agent, AgentState, Queue
    from ccphost.engine.services import put_agent_state

    agent = Agent.objects.select_related("instance").get(pk=agent_pk)
    if step == "available":
        put_agent_state(agent, AgentState.objects.get(instance=agent.instance, name="Available"))
        return {}
    queue = Queue.objects.get(instance=agent.instance, name=seed.BASIC_QUEUE)
    started = time.time()
    network.start_inbound_contact(agent.instance, queue, "+15555550123", {})
    return {"startedAt": started}


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def reply(send: Any, answer: bytes) -> None:
    """A 200 answer with a JSON body (or none)."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


async def trigger(scope: dict[str, Any], receive: Any, send: Any) -> None:
    request = json.loads(await read_body(receive))
    if request.get("floor"):
        await floor_send([str(g) for g in request["floor"]])
    if request.get("agents"):
        pks = [int(pk) for pk in request["agents"]]
        if running_engine() is not None:
            # As the CCP sockets' calls come to an engine process: one change a call, sent
            # together (it runs the calls waiting together in one transaction).
            statuses = await engine_sync_to_async(toggle_ahead)(pks)
            toggle = engine_sync_to_async(toggle_agent_states)
            await asyncio.gather(*(toggle([pk], {pk: statuses[pk]}) for pk in pks))
        else:
            # As independent service calls would: side by side on the engine's threads (one
            # on SQLite, CCPHOST_ENGINE_THREADS on PostgreSQL), each a share of the agents.
            share, threads = engine_sync_to_async(toggle_agent_states), engine_threads()
            await asyncio.gather(*(share(pks[i::threads]) for i in range(threads)))
    answer = b""
    if request.get("ring"):
        answer = json.dumps(await database_sync_to_async(ring)(int(request["ring"]), request["step"])).encode()
    await reply(send, answer)


_collection_started = 0.0
_collections: list[tuple[int, float, int]] = []  # (generation, ms, objects freed) of each since the last report


def time_collection(phase: str, info: dict[str, Any]) -> None:
    global _collection_started
    if phase == "start":
        _collection_started = time.perf_counter()
    else:
        ms = (time.perf_counter() - _collection_started) * 1000
        _collections.append((info["generation"], ms, info["collected"]))


gc.callbacks.append(time_collection)


def collections() -> dict[str, Any]:
    taken = _collections[:]
    del _collections[: len(taken)]
    report = {}
    for generation in sorted({g for g, _, _ in taken}):
        times = [ms for g, ms, _ in taken if g == generation]
        report[str(generation)] = {
            "count": len(times),
            "max_ms": round(max(times), 1),
            "total_ms": round(sum(times), 1),
            "freed": sum(freed for g, _, freed in taken if g == generation),
        }
    return report


class Watchdog:
    """A thread that watches the event loop's heartbeat (``beat``, every BEAT seconds) and,
    whenever it is more than ``late_ms`` late, samples every thread's stack (up to SAMPLES
    times a stall, ``late_ms`` apart): what held the loop up, or what held the GIL it waited
    for. ``beat`` records each stall's length when the loop comes back."""

    BEAT = 0.01
    SAMPLES = 3
    DEPTH = 10

    def __init__(self, late_ms: float) -> None:
        self.late = late_ms / 1000
        self.last_beat = time.monotonic()
        self.samples: list[dict[str, list[str]]] = []
        self.stalls: list[dict[str, Any]] = []
        self.not_before = 0.0  # stalls that began earlier are the bench's own (the census)
        threading.Thread(target=self.watch, name="bench-watchdog", daemon=True).start()

    async def beat(self) -> None:
        while True:
            await asyncio.sleep(self.BEAT)
            now = time.monotonic()
            late, began = now - self.last_beat - self.BEAT, self.last_beat
            self.last_beat = now
            if late > self.late:
                samples, self.samples = self.samples, []
                if began >= self.not_before:
                    self.stalls.append({"ms": round(late * 1000, 1), "samples": samples})

    def watch(self) -> None:
        sampled_at = 0.0
        while True:
            time.sleep(self.BEAT)
            now = time.monotonic()
            if now - self.last_beat - self.BEAT > self.late and now - sampled_at >= self.late:
                if len(self.samples) < self.SAMPLES:
                    self.samples.append(self.stacks())
                sampled_at = now

    def stacks(self) -> dict[str, list[str]]:
        names = {t.ident: t.name for t in threading.enumerate()}
        stacks = {}
        for ident, frame in sys._current_frames().items():
            name = names.get(ident, str(ident))
            if name == "bench-watchdog":
                continue
            stacks[name] = [
                f"{'/'.join(f.filename.split('/')[-2:])}:{f.lineno} {f.name}"
                for f in traceback.extract_stack(frame)[-self.DEPTH :]
            ]
        return stacks

    def report(self) -> list[dict[str, Any]]:
        taken = self.stalls[:]
        del self.stalls[: len(taken)]
        return taken


watchdog = Watchdog(float(os.environ["BENCH_WATCHDOG_MS"])) if os.environ.get("BENCH_WATCHDOG_MS") else None
_heartbeat: "asyncio.Task[None] | None" = None


def census() -> dict[str, Any]:
    tracked = gc.get_objects()
    types = Counter(type(o).__qualname__ for o in tracked).most_common(25)
    count = len(tracked)
    del tracked
    started, cpu_started = time.perf_counter(), time.process_time()
    freed = gc.collect()
    _collections.pop()  # not the process's own
    tracked = gc.get_objects()
    count_after, types_after = len(tracked), Counter(type(o).__qualname__ for o in tracked).most_common(25)
    del tracked
    return {
        "tracked": count,
        "freed": freed,
        "tracked_after_collection": count_after,
        "types_after_collection": types_after,
        "frozen": gc.get_freeze_count(),
        "full_collection_ms": round((time.perf_counter() - started) * 1000, 1),
        "full_collection_cpu_ms": round((time.process_time() - cpu_started) * 1000, 1),
        "types": types,
    }


async def reply_json(send: Any, body: dict[str, Any]) -> None:
    await reply(send, json.dumps(body).encode())


floor_router = URLRouter([path("ws/floor/<slug:group>/", FloorConsumer.as_asgi())])


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _heartbeat
    if watchdog is not None and _heartbeat is None:
        _heartbeat = asyncio.create_task(watchdog.beat())
    if scope["type"] == "http" and scope["path"] == "/bench/trigger":
        return await trigger(scope, receive, send)
    if scope["type"] == "http" and scope["path"] == "/bench/collections":
        await read_body(receive)
        return await reply_json(send, collections())
    if scope["type"] == "http" and scope["path"] == "/bench/stalls":
        await read_body(receive)
        return await reply_json(send, {"stalls": watchdog.report() if watchdog else None})
    if scope["type"] == "http" and scope["path"] == "/bench/census":
        await read_body(receive)
        report = census()  # on the loop: the whole process stops, as in a collection
        if watchdog is not None:
            watchdog.not_before = time.monotonic()
        return await reply_json(send, report)
    if scope["type"] == "http" and scope["path"] == "/bench/threads":
        await read_body(receive)
        threads = {str(t.native_id): t.name for t in threading.enumerate() if t.native_id is not None}
        return await reply_json(send, {"pid": os.getpid(), "threads": threads})
    if scope["type"] == "websocket" and scope["path"].startswith("/ws/floor/"):
        return await floor_router(scope, receive, send)
    return await ccphost_application(scope, receive, send)
