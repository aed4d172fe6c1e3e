"""``/ws/events/<alias>/``: live agent and contact events for pages on approved origins.

Query string: ``token`` (from the agent's CCP, see ``event_stream.make_events_token``) or
the session of a signed-in agent; ``scope=instance`` for staff allowed to supervise;
``after=<seq>`` to receive what was missed since that event. Clients send at most pings, within
the socket's frame rate limit (ratelimit.py).
"""

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from ccphost.background import repeat
from ccphost.ccp import event_stream, forwarding
from ccphost.ccp.ratelimit import FrameLimitedConsumer
from ccphost.engine.models import Agent
from ccphost.engine.threads import engine_sync_to_async
from ccphost.instances.models import Instance

MAX_FRAME_CHARS = 65536  # a forwarded agent snapshot; pings are tiny
CLOSE_BAD_REQUEST = 4400
CLOSE_FORBIDDEN = 4403


@dataclass(frozen=True)
class Subscriber:
    instance_id: int
    agent_id: int | None  # None: every event of the instance

    @property
    def group(self) -> str:
        if self.agent_id is None:
            return event_stream.instance_group(self.instance_id)
        return event_stream.agent_group(self.instance_id, self.agent_id)


def resolve_subscriber(alias: str, user: Any, token: str | None, scope: str | None) -> Subscriber | str:
    """Who is subscribing, or the reason they may not."""
    instance = Instance.objects.filter(alias=alias).first()
    if instance is None:
        return f"No instance {alias!r}."
    if token:
        agent = event_stream.agent_from_token(token, alias)
        return Subscriber(instance.pk, agent.pk) if agent else "The events token is invalid or expired."
    if user is None or not user.is_authenticated:
        return "Sign in, or give the events token your CCP provides."
    if scope == "instance":
        if user.has_perm(event_stream.SUPERVISE_PERMISSION):
            return Subscriber(instance.pk, None)
        return "You may not subscribe to every event of this instance."
    agent = Agent.objects.filter(instance=instance, user=user).first()
    if agent is None:
        return "You are not an agent of this instance."
    return Subscriber(instance.pk, agent.pk)


class EventsConsumer(FrameLimitedConsumer):
    subscriber: Subscriber | None = None
    watcher: "asyncio.Task[None] | None" = None
    sent = 0

    async def connect(self) -> None:
        alias = self.scope["url_route"]["kwargs"]["alias"]
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        await self.accept()
        after_text = query.get("after", ["0"])[0]
        if after_text != "latest" and not re.fullmatch(r"[0-9]{1,18}", after_text):
            await self.refuse(CLOSE_BAD_REQUEST, f"after must be a whole number or 'latest', not {after_text!r}.")
            return
        found = await database_sync_to_async(resolve_subscriber)(
            alias, self.scope.get("user"), query.get("token", [None])[0], query.get("scope", [None])[0]
        )
        if isinstance(found, str):
            await self.refuse(CLOSE_FORBIDDEN, found)
            return
        self.subscriber = found
        if after_text == "latest":  # only what happens from now on
            self.sent = await database_sync_to_async(event_stream.latest_visible_sequence)(
                found.instance_id, found.agent_id
            )
        else:
            self.sent = int(after_text)
        self.catching_up = asyncio.Lock()
        await self.channel_layer.group_add(found.group, self.channel_name)
        scope = "instance" if found.agent_id is None else "agent"
        await self.send_json({"type": "subscribed", "scope": scope, "after": self.sent})
        await self.catch_up()
        self.watcher = asyncio.create_task(
            repeat(event_stream.WATCH_SECONDS, self.check_database, "Checking the database for missed events")
        )

    async def check_database(self) -> None:
        assert self.subscriber is not None
        latest = await database_sync_to_async(event_stream.latest_visible_sequence)(
            self.subscriber.instance_id, self.subscriber.agent_id
        )
        if latest > self.sent:
            await self.catch_up()

    async def refuse(self, code: int, message: str) -> None:
        await self.send_json({"type": "error", "message": message})
        await self.close(code)

    async def disconnect(self, code: int) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        if self.subscriber is not None:
            await self.channel_layer.group_discard(self.subscriber.group, self.channel_name)

    async def events_poke(self, message: dict[str, Any]) -> None:
        if message["seq"] > self.sent:
            await self.catch_up()

    async def catch_up(self) -> None:
        """Send, in order, every visible event after the last one sent."""
        assert self.subscriber is not None
        async with self.catching_up:
            while True:
                batch = await database_sync_to_async(self.next_batch)()
                for frame in batch:
                    await self.send_json(frame)
                    self.sent = frame["seq"]
                if len(batch) < event_stream.PAGE_SIZE:
                    return

    def next_batch(self) -> list[dict[str, Any]]:
        assert self.subscriber is not None
        events = event_stream.visible_events(self.subscriber.instance_id, self.subscriber.agent_id, self.sent)
        return [event_stream.envelope(event) for event in events]

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong", "seq": self.sent})
            return
        if kind == "forward":
            await self.forward(content.get("agentData"))
            return
        await self.send_json(
            {"type": "error", "message": 'Frames are {"type": "ping"}, or {"type": "forward", "agentData": ...}.'}
        )

    async def forward(self, agent_data: Any) -> None:
        """An Amazon-hosted CCP's agent::update, forwarded by ccphost's agent page."""
        assert self.subscriber is not None
        if self.subscriber.agent_id is None:
            await self.send_json({"type": "error", "message": "Only an agent's own socket forwards events."})
            return
        try:
            sequences = await engine_sync_to_async(forwarding.record_forwarded)(self.subscriber.agent_id, agent_data)
        except forwarding.ForwardError as problem:
            await self.send_json({"type": "error", "message": f"Not forwarded: {problem}"})
            return
        await self.send_json({"type": "forwarded", "recorded": sequences})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            message = f"Frames are JSON text of at most {MAX_FRAME_CHARS} characters."
            await self.send_json({"type": "error", "message": message})
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.send_json({"type": "error", "message": "The frame is not valid JSON."})
            return
        await self.receive_json(content)
