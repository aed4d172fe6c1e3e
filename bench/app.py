"""The ASGI app the benchmark serves: ccphost's own application plus two bench-only parts
that production never mounts:

- ``/ws/floor/<group>/``: a bare Channels consumer that joins a group and forwards group
  messages (dispatched as ccphost's are, without a database thread hop), the floor
  ccphost's CCP socket is compared with;
- ``POST /bench/trigger``: runs, inside the server process (where the embedded channel
  layer lives), either real engine service calls (``put_agent_state`` for each agent pk
  given) or bare ``group_send`` calls to floor groups, stamping the time of each call; or,
  for the time to ring, makes one agent Available or starts an inbound call.
"""

import asyncio
import json
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from django.urls import path

from ccphost.asgi import application as ccphost_application
from ccphost.ccp.dispatch import DirectDispatchMixin
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


def toggle_agent_states(agent_pks: list[int]) -> None:
    """Toggle each agent between Break and Lunch, one service call each. The trigger's own
    reads are kept small, as they share the engine's thread with the calls measured: the
    agents are read once, and then only their status names, fresh (other phases change
    them too); reading them whole at every tick took 10% of that thread (py-spy)."""
    from ccphost.engine.models import Agent, AgentState
    from ccphost.engine.services import put_agent_state

    if not agent_pks:
        return
    if not BENCH_STATES:
        BENCH_STATES.update(
            (s.name, s) for s in AgentState.objects.filter(instance__alias="bench", name__in=["Break", "Lunch"])
        )
    if missing := [pk for pk in agent_pks if pk not in BENCH_AGENTS]:
        BENCH_AGENTS.update((a.pk, a) for a in Agent.objects.select_related("instance").filter(pk__in=missing))
    statuses = dict(Agent.objects.filter(pk__in=agent_pks).values_list("pk", "status__name"))
    for pk in agent_pks:
        put_agent_state(BENCH_AGENTS[pk], BENCH_STATES["Lunch" if statuses[pk] == "Break" else "Break"])


async def floor_send(groups: list[str]) -> None:
    layer = get_channel_layer()
    for group in groups:
        text = json.dumps({"sentAt": time.time(), "payload": FLOOR_PAYLOAD})
        await layer.group_send(f"floor.{group}", {"type": "floor.message", "text": text})


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


async def trigger(scope: dict[str, Any], receive: Any, send: Any) -> None:
    request = json.loads(await read_body(receive))
    if request.get("floor"):
        await floor_send([str(g) for g in request["floor"]])
    if request.get("agents"):
        # As independent service calls would: side by side on the engine's threads (one on
        # SQLite, CCPHOST_ENGINE_THREADS on PostgreSQL), each thread a share of the agents.
        pks, threads = [int(pk) for pk in request["agents"]], engine_threads()
        await asyncio.gather(*(engine_sync_to_async(toggle_agent_states)(pks[i::threads]) for i in range(threads)))
    answer = b""
    if request.get("ring"):
        answer = json.dumps(await database_sync_to_async(ring)(int(request["ring"]), request["step"])).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


floor_router = URLRouter([path("ws/floor/<slug:group>/", FloorConsumer.as_asgi())])


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/bench/trigger":
        return await trigger(scope, receive, send)
    if scope["type"] == "websocket" and scope["path"].startswith("/ws/floor/"):
        return await floor_router(scope, receive, send)
    return await ccphost_application(scope, receive, send)
