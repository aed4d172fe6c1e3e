"""The CCP socket: one per CCP tab, for a signed-in agent of the instance.

Server frames: hello, snapshot (full, versioned), auth_fail / access_denied before closing,
heartbeat answers, and {requestId, data} / {requestId, err} answers to API requests.
Frames over the socket's rate limit (ratelimit.py) are answered with a TooManyRequestsException
error (statusCode 429) and not handled.

Snapshots reach a socket two ways: the engine pushes each change to the group agent.<pk>
on commit, and a per-process watcher compares, every 250 ms, the versions of the snapshots
changed since its previous look (every 10 s, of all its agents) with the versions its
sockets were sent. The watcher covers changes made where the push cannot reach (another
process on the embedded in-memory layer, such as `manage.py simulate`) and pushes a channel
layer dropped."""

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from django.db import connection
from django.utils import timezone

from ccphost.background import start_once
from ccphost.ccp.ratelimit import FrameLimitedConsumer
from ccphost.engine import sockets, timers
from ccphost.engine.api import handle_api_request
from ccphost.engine.core import EngineError, let_go_of_settings
from ccphost.engine.models import Agent
from ccphost.engine.prepared import PreparedQuery, placeholders
from ccphost.engine.snapshots import snapshot_frame, snapshot_message
from ccphost.engine.threads import engine_sync_to_async, reader_sync_to_async
from ccphost.instances.models import Instance

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024
HEART_BEAT_EVENT_SECONDS = 120
WATCH_SECONDS = 0.25
WATCH_MARGIN = timedelta(seconds=2)
# A snapshot pushed less than this long ago may still be on its way (under load, through
# Redis): the watcher leaves it to a later look instead of building and sending it twice.
PUSH_GRACE = timedelta(seconds=0.5)
WATCH_ALL_SECONDS = 10.0

# Close codes in the 4000 range are ours; the CCP page reads them.
CLOSE_NOT_SIGNED_IN = 4401
CLOSE_NOT_AN_AGENT = 4403
CLOSE_UNKNOWN_INSTANCE = 4404
REFUSALS = {
    CLOSE_UNKNOWN_INSTANCE: lambda alias: {"type": "error", "message": f"No instance {alias!r}."},
    CLOSE_NOT_SIGNED_IN: lambda alias: {"type": "auth_fail", "message": "Sign in to use the CCP."},
    CLOSE_NOT_AN_AGENT: lambda alias: {"type": "access_denied", "message": "You are not an agent of this instance."},
}


# Each socket's lookups (engine.prepared: compiled once, not at every call).
USERS_AGENT = PreparedQuery(
    lambda alias, user_pk: Agent.objects.select_related("instance", "user").filter(
        instance__alias=alias, user_id=user_pk
    )
)
# The agent of a CCP request, with its instance's settings: their configuration stamp lets
# the request take what it names (an agent state) from the configuration cache.
REQUEST_AGENT = PreparedQuery(
    lambda pk: Agent.objects.select_related("instance__engine_settings", "user").filter(pk=pk)
)


def find_agent(alias: str, user: Any) -> tuple[Agent | None, int]:
    """The user's agent in the instance, or None and the close code saying why not."""
    if user is not None and user.is_authenticated:
        agents = USERS_AGENT(alias, user.pk)
        if agents:
            return agents[0], 0
    if not Instance.objects.filter(alias=alias).exists():
        return None, CLOSE_UNKNOWN_INSTANCE
    return None, CLOSE_NOT_AN_AGENT if user is not None and user.is_authenticated else CLOSE_NOT_SIGNED_IN


def error(request_id: Any, type_: str, message: str, status: int) -> dict[str, Any]:
    return {"requestId": request_id, "err": {"type": type_, "message": message, "statusCode": status}}


def request_id_of(frame: Any) -> Any:
    """The frame's requestId to echo in the answer, when it is one a client can match."""
    request_id = frame.get("requestId") if isinstance(frame, dict) else None
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        return None
    return request_id


def run_api_request(agent_pk: int, method: str, params: Any) -> Any:
    (agent,) = REQUEST_AGENT(agent_pk)
    try:
        return handle_api_request(agent, method, params)
    finally:
        let_go_of_settings(agent.instance)  # a cycle with its settings row otherwise (core)


# This process's CCP sockets by agent, for the version watcher.
local_sockets: dict[int, dict[str, "CcpConsumer"]] = defaultdict(dict)
NO_SOCKETS: dict[str, "CcpConsumer"] = {}


def snapshot_versions(since: datetime | None) -> dict[int, int]:
    """The snapshot versions that some socket of this process has not been sent: of all
    this process's agents, or of the agents whose snapshot changed since ``since`` (an
    indexed range); less those changed within PUSH_GRACE, whose push is on its way.

    At 10,000 sockets every step of this counts (it holds the GIL on the reader's thread):
    the ORM's ``pk__in`` of 10,000 pks took 35-160 ms of CPU a look on the project's VM, and
    reading every changed row's stamp as a datetime made each change cost the watcher nine
    conversions (a change stays in the 2 s margin for nine looks). So the agents' versions
    are read as plain numbers (of all agents, LOOK_ALL_CHUNK at a time), compared with what
    their sockets were sent (``behind``), and only the stamps of those behind are read."""
    rows: Iterable[tuple[int, int]]
    if since is None:
        rows = local_versions(list(local_sockets))
    else:
        rows = Agent.objects.filter(snapshot_at__gte=since).values_list("pk", "snapshot_version")
    versions = behind(rows)
    if not versions:
        return versions
    settled = timezone.now() - PUSH_GRACE
    for pk, at in Agent.objects.filter(pk__in=list(versions)).values_list("pk", "snapshot_at"):
        if at is not None and at > settled:
            del versions[pk]
    return versions


LOOK_ALL_CHUNK = 500  # agents per statement (SQLite allowed 999 parameters before 3.32)


def local_versions(agent_pks: list[int]) -> Iterator[tuple[int, int]]:
    """The snapshot versions of these agents, in statements of plain numbers, one chunk's
    rows at a time: each row is a tuple the cycle collector counts while it lives, and the
    10,000 rows of a look at 10,000 agents, held together, set off two young collections
    every look, and every few looks a middle one (70-80 ms, caught by the bench's watchdog
    while the round trips waited)."""
    quote, meta = connection.ops.quote_name, Agent._meta
    key, version = quote(meta.pk.column), quote(meta.get_field("snapshot_version").column)
    with connection.cursor() as cursor:
        for start in range(0, len(agent_pks), LOOK_ALL_CHUNK):
            chunk = agent_pks[start : start + LOOK_ALL_CHUNK]
            cursor.execute(
                f"SELECT {key}, {version} FROM {quote(meta.db_table)} WHERE {key} IN ({placeholders(len(chunk))})",  # noqa: S608 (names and placeholders)
                chunk,
            )
            yield from cursor.fetchall()


def behind(rows: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Of (agent pk, snapshot version) rows, those some socket of the agent in this process
    has not been sent. Read on the reader's thread while the event loop changes the
    sockets: a socket's ``sent_version`` only grows, so an agent is at worst kept when it
    was just sent its snapshot, and deliver_missed_snapshots looks again on the loop."""
    versions = {}
    for pk, version in rows:
        for consumer in list(local_sockets.get(pk, NO_SOCKETS).values()):
            if consumer.sent_version < version:
                versions[pk] = version
                break
    return versions


async def deliver_missed_snapshots(since: datetime | None = None) -> None:
    versions = await reader_sync_to_async(snapshot_versions)(since)
    for agent_pk, version in versions.items():
        behind = [c for c in list(local_sockets.get(agent_pk, {}).values()) if c.sent_version < version]
        if behind:
            message = snapshot_message(await reader_sync_to_async(snapshot_frame)(agent_pk))
            for consumer in behind:
                await consumer.channel_layer.send(consumer.channel_name, message)


async def watch_snapshot_versions() -> None:
    """Every WATCH_SECONDS, look at the snapshots changed since the previous look (less
    WATCH_MARGIN, as a change is stamped just before its commit); every WATCH_ALL_SECONDS,
    at all of this process's agents, for a commit later than the margin or another host's
    clock."""
    since: datetime | None = None
    last_full = 0.0
    while local_sockets:
        started, started_at = time.monotonic(), timezone.now()
        full = since is None or started - last_full >= WATCH_ALL_SECONDS
        try:
            await deliver_missed_snapshots(None if full else since)
            since = started_at - WATCH_MARGIN
            last_full = started if full else last_full
        except Exception:
            logger.exception("The snapshot watcher failed")
        await asyncio.sleep(WATCH_SECONDS)


def start_snapshot_watcher() -> None:
    start_once("snapshot-watcher", watch_snapshot_versions)


class CcpConsumer(FrameLimitedConsumer):
    agent: Agent | None = None
    last_heart_beat = 0.0
    sent_version = -1
    unsent_text: str | None = None  # the newest snapshot frame not sent yet
    frame_sender: "asyncio.Task[None] | None" = None

    async def connect(self) -> None:
        self.alias: str = self.scope["url_route"]["kwargs"]["alias"]
        await self.accept()
        user = self.scope.get("user")
        agent, refusal = await engine_sync_to_async(find_agent)(self.alias, user)
        if agent is None:
            await self.send_json(REFUSALS[refusal](self.alias))
            await self.close(refusal)
            return
        self.agent = agent
        await self.send_json({"type": "hello", "username": user.get_username(), "instance": self.alias})
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None) or f"socket:{self.channel_name}"
        # Join the group before reading the snapshot: a change after the read is pushed.
        await self.channel_layer.group_add(agent.group_name, self.channel_name)
        frame = await engine_sync_to_async(sockets.open_ccp_socket)(agent, self.channel_name, session_key)
        await self.ccp_snapshot(snapshot_message(frame))
        self.last_heart_beat = time.monotonic()
        local_sockets[agent.pk][self.channel_name] = self
        start_snapshot_watcher()
        timers.start_timer_loop()

    async def disconnect(self, code: int) -> None:
        if self.agent is None:
            return
        mine = local_sockets.get(self.agent.pk, {})
        mine.pop(self.channel_name, None)
        if not mine:
            local_sockets.pop(self.agent.pk, None)
        if self.frame_sender is not None:
            self.frame_sender.cancel()
        await self.channel_layer.group_discard(self.agent.group_name, self.channel_name)
        await engine_sync_to_async(sockets.close_ccp_socket)(self.agent, self.channel_name)
        await self.release_channel()

    async def release_channel(self) -> None:
        """Make sure the channel layer lets go of this socket's channel.

        channels_redis's pub/sub layer unsubscribes a channel when a receive() waiting on it is
        cancelled, as Channels does when the consumer ends; but when a message for the socket had
        just been taken, not yet handled, as it closed, no receive waits, and the channel stayed
        subscribed for ever (channels_redis issue 276). So one more receive, cancelled once it
        waits: the layer cleans up then, whichever way the socket closed. Only that layer:
        RedisChannelLayer's receive, run beside the one Channels cancels, raises KeyError."""
        if not isinstance(self.channel_layer, RedisPubSubChannelLayer):
            return
        while True:
            receiving = asyncio.ensure_future(self.channel_layer.receive(self.channel_name))
            await asyncio.sleep(0)
            if not receiving.done():  # waiting, not a message still queued for the socket
                break
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving

    async def ccp_snapshot(self, message: dict[str, Any]) -> None:
        """Send a snapshot frame (snapshots.snapshot_message) unless this socket already has
        that version or a later one.

        Frames leave from one task per socket, and only the newest waits: a client that stops
        reading holds back one frame, not every push (which the layer would otherwise queue
        for it without bound, the watcher adding a copy every 250 ms), and resyncs to the
        latest version when it reads again."""
        if message["version"] <= self.sent_version:
            return
        self.sent_version = message["version"]
        self.unsent_text = message["text"]
        if self.frame_sender is None or self.frame_sender.done():
            self.frame_sender = asyncio.create_task(self.send_unsent_frames())

    async def send_unsent_frames(self) -> None:
        """Send the newest frame waiting until none waits; then let the task go. Kept until
        the socket's next frame (16 s apart at 10,000 sockets and 600 changes a second), each
        finished task, with its coroutine and context, outlived the cycle collector's young
        generation and filled the older ones."""
        try:
            while self.unsent_text is not None:
                text, self.unsent_text = self.unsent_text, None
                await self.send(text_data=text)
        finally:
            self.frame_sender = None

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """Send, or drop the frame when the server already gave up the connection: uvicorn
        raises ClientDisconnected (an OSError) once it is lost and RuntimeError once it closed
        it (keepalive timeout). Raised, either would end the consumer without disconnect(),
        leaving the socket's row, group and channel behind; the websocket.disconnect that
        follows cleans up."""
        try:
            await super().send(text_data, bytes_data, close)
        except (OSError, RuntimeError) as gone:
            logger.debug("A frame for the closed CCP socket %s was dropped: %r", self.channel_name, gone)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if self.agent is None:
            return
        if text_data is None:
            await self.send_json(error(None, "InvalidFrame", "Frames are JSON text, not binary.", 400))
            return
        if len(text_data.encode()) > MAX_FRAME_BYTES:
            await self.send_json(error(None, "FrameTooLarge", f"A frame is at most {MAX_FRAME_BYTES} bytes.", 413))
            return
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            await self.send_json(error(None, "InvalidFrame", "The frame is not valid JSON.", 400))
            return
        await self.receive_frame(frame)

    def rate_limited_frame(self, message: dict[str, Any], explanation: str) -> dict[str, Any]:
        """Refused, unread; its requestId is looked for only so a pending request fails at once."""
        text = message.get("text")
        frame = None
        if text is not None and len(text.encode()) <= MAX_FRAME_BYTES:
            with contextlib.suppress(ValueError, RecursionError):
                frame = json.loads(text)
        return error(request_id_of(frame), "TooManyRequestsException", explanation, 429)

    async def receive_frame(self, frame: Any) -> None:
        if not isinstance(frame, dict):
            await self.send_json(error(None, "InvalidFrame", "A frame is a JSON object.", 400))
            return
        if frame.get("type") == "heartbeat":
            await self.send_json({"type": "heartbeat"})
            await engine_sync_to_async(sockets.ccp_socket_alive)(self.channel_name)
            await self.heart_beat_event()
            return
        request_id = request_id_of(frame)
        method = frame.get("method")
        if not isinstance(method, str):
            await self.send_json(error(request_id, "InvalidFrame", "A request needs a 'method' string.", 400))
            return
        await self.send_json(await self.answer(request_id, method, frame.get("params")))

    async def answer(self, request_id: Any, method: str, params: Any) -> dict[str, Any]:
        assert self.agent is not None
        try:
            data = await engine_sync_to_async(run_api_request)(self.agent.pk, method, params)
        except EngineError as refused:
            return {"requestId": request_id, "err": refused.as_dict()}
        except Exception:
            logger.exception("CCP request %s failed", method)
            return error(request_id, "InternalServiceException", "ccphost could not complete the request.", 500)
        return {"requestId": request_id, "data": data}

    async def heart_beat_event(self) -> None:
        """A HEART_BEAT agent event at most every two minutes per socket, as Amazon's stream does."""
        if self.agent is None or time.monotonic() - self.last_heart_beat < HEART_BEAT_EVENT_SECONDS:
            return
        self.last_heart_beat = time.monotonic()
        await engine_sync_to_async(sockets.record_heartbeat)(self.agent)
