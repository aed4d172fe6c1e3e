"""The supervisor board: every agent with state and time in state, every queue with its
waiting contacts and oldest wait. Built whole from the database each time, so a page that
reconnects is right at once; pushed over ``/ws/supervisor/<alias>/`` when events commit."""

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from django.db.models import Count, Min, Q
from django.utils import timezone

from ccphost.background import repeat
from ccphost.ccp import event_stream
from ccphost.ccp.ratelimit import FrameLimitedConsumer
from ccphost.engine.events import iso
from ccphost.engine.models import Agent, Contact, Queue
from ccphost.instances.models import Instance

CLOSE_FORBIDDEN = 4403
# Many events commit together during a call: send one board for them.
SETTLE_SECONDS = 0.1


def supervisor_board(instance_id: int) -> dict[str, Any]:
    agents = (
        Agent.objects.filter(instance_id=instance_id)
        .select_related("user", "routing_profile")
        .annotate(open_contacts=Count("connections", filter=Q(connections__cleared_at__isnull=True)))
        .order_by("user__username")
    )
    queues = (
        Queue.objects.filter(instance_id=instance_id)
        .annotate(
            waiting=Count("contacts", filter=Q(contacts__waiting_since__isnull=False)),
            oldest=Min("contacts__waiting_since", filter=Q(contacts__waiting_since__isnull=False)),
        )
        .order_by("name")
    )
    return {
        "type": "board",
        "at": iso(timezone.now()),
        "agents": [
            {
                "username": agent.user.get_username(),
                "name": agent.user.get_full_name() or agent.user.get_username(),
                "stateType": agent.state_type,
                "stateName": agent.state_name,
                "stateSince": iso(agent.state_since),
                "routingProfile": agent.routing_profile.name,
                "contacts": agent.open_contacts,
            }
            for agent in agents
        ],
        "queues": [{"name": q.name, "waiting": q.waiting, "oldestWaitSince": iso(q.oldest)} for q in queues],
        "contactsInProgress": Contact.objects.filter(instance_id=instance_id).exclude(state="ended").count(),
    }


def last_sequence(instance_id: int) -> int:
    return event_stream.latest_visible_sequence(instance_id, None)


def may_supervise(alias: str, user: Any) -> int | None:
    """The instance id when ``user`` may watch it."""
    if user is None or not user.is_authenticated or not user.has_perm(event_stream.SUPERVISE_PERMISSION):
        return None
    return Instance.objects.filter(alias=alias).values_list("pk", flat=True).first()


class SupervisorConsumer(FrameLimitedConsumer):
    instance_id: int | None = None
    refresh: "asyncio.Task[None] | None" = None
    watcher: "asyncio.Task[None] | None" = None
    dirty = False
    board_sequence = 0

    async def connect(self) -> None:
        await self.accept()
        alias = self.scope["url_route"]["kwargs"]["alias"]
        instance_id = await database_sync_to_async(may_supervise)(alias, self.scope.get("user"))
        if instance_id is None:
            await self.send_json({"type": "error", "message": "Only staff allowed to supervise this instance."})
            await self.close(CLOSE_FORBIDDEN)
            return
        self.instance_id = instance_id
        await self.channel_layer.group_add(event_stream.instance_group(instance_id), self.channel_name)
        await self.send_board()
        self.watcher = asyncio.create_task(
            repeat(event_stream.WATCH_SECONDS, self.check_database, "Checking the database for missed events")
        )

    async def check_database(self) -> None:
        assert self.instance_id is not None
        if await database_sync_to_async(last_sequence)(self.instance_id) > self.board_sequence:
            await self.events_poke({})

    async def disconnect(self, code: int) -> None:
        for task in (self.refresh, self.watcher):
            if task is not None:
                task.cancel()
        if self.instance_id is not None:
            await self.channel_layer.group_discard(event_stream.instance_group(self.instance_id), self.channel_name)

    async def events_poke(self, message: dict[str, Any]) -> None:
        self.dirty = True
        if self.refresh is None or self.refresh.done():
            self.refresh = asyncio.create_task(self.refresh_soon())

    async def refresh_soon(self) -> None:
        # Several events commit per call: one board for all that came in the meantime.
        while self.dirty:
            await asyncio.sleep(SETTLE_SECONDS)
            self.dirty = False
            await self.send_board()

    async def send_board(self) -> None:
        assert self.instance_id is not None
        sequence = await database_sync_to_async(last_sequence)(self.instance_id)
        await self.send_json(await database_sync_to_async(supervisor_board)(self.instance_id))
        self.board_sequence = sequence

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        # Nothing a client sends is read (not even as JSON): binary or broken frames get this too.
        await self.send_json({"type": "error", "message": "The supervisor socket only sends."})
