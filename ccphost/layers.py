"""The embedded (single-process) channel layer, and scale-out's Redis layer that sends a
batch of group messages in one round trip (PipelinedRedisPubSubChannelLayer).

Channels' stock ``InMemoryChannelLayer`` walks every channel and every group on each
``receive`` and ``group_send`` to expire old messages, so its cost grows with the number of
open sockets (measured in ../shared/docs/design.md: 10,000 sockets get 14 deliveries/s).
This layer keeps the same semantics (expiry, group expiry, capacity) but sweeps at most
once per ``sweep_interval`` seconds, which is all expiry needs: an expired message is at
most ``sweep_interval`` late to be dropped.

It also delivers with less work per message: a group send puts the message straight into
each member's queue (the stock layer makes a task per member and waits for them with
``as_completed``); a message of immutable values is copied shallowly (the stock layer deep
copies it for each member: the same result for such values); and a channel keeps its queue
between receives (the stock layer builds a new ``asyncio.Queue`` at every ``receive`` and
drops it once empty: at 10,000 sockets each one lived until the socket's next message,
long enough to fill the cycle collector's older generations).
"""

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

logger = logging.getLogger(__name__)


class SweepLimitedInMemoryChannelLayer(InMemoryChannelLayer):
    """Sweeps at most once per ``sweep_interval`` seconds, and each sweep looks at no more
    than ``sweep_batch`` channels and groups, going on where the previous one stopped: a
    whole pass over 10,000 sockets' channels and groups stopped the event loop for 60-140 ms
    once a second (a watchdog's stack samples on the project's VM, on a slow day), the
    cause of most API round trips over 50 ms there. Expiry is then late by at most the
    passes' length (20 s for 20,000 channels and groups, against a 60 s message expiry).
    A pass's names are kept as two plain lists of strings: a (kind, name) pair for each
    made 20,000 objects for the cycle collector at every pass of 10,000 sockets, and a
    collection or two of them at once."""

    def __init__(self, sweep_interval: float = 1.0, sweep_batch: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweep_interval = sweep_interval
        self.sweep_batch = sweep_batch
        self._next_sweep = 0.0
        self._unswept_groups: list[str] = []  # left of this pass
        self._unswept_channels: list[str] = []

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        self._put(channel, message)

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        """The message, copied, at the end of the channel's queue; ChannelFull past capacity."""
        try:
            self._queue(channel).put_nowait((time.time() + self.expiry, copied(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def receive(self, channel: str) -> dict[str, Any]:
        """The channel's next message. Its queue stays for the next receive; it goes when
        a receive is cancelled (the consumer leaves) with nothing in it, or in a sweep that
        finds it empty with no one waiting."""
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self._queue(channel)
        try:
            _, message = await queue.get()
        except asyncio.CancelledError:
            if queue.empty() and self.channels.get(channel) is queue:
                del self.channels[channel]
            raise
        return message

    def _queue(self, channel: str) -> "asyncio.Queue[tuple[float, dict[str, Any]]]":
        """The channel's queue, made if it has none (without building one when it has)."""
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """To each member at once, in one pass; a member whose queue is full misses it, as
        with the stock layer. (Members' names were checked when they joined.)"""
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:  # noqa: SIM105 (no suppress() object per member)
                self._put(channel, message)
            except ChannelFull:
                pass

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        if not self._unswept_groups and not self._unswept_channels:  # a new pass, over what there is now
            self._unswept_groups, self._unswept_channels = list(self.groups), list(self.channels)
        wall = time.time()
        joined_before = int(wall) - self.group_expiry
        groups = take_last(self._unswept_groups, self.sweep_batch)
        for group in groups:
            self._expire_members(group, joined_before)
        for channel in take_last(self._unswept_channels, self.sweep_batch - len(groups)):
            self._expire_messages(channel, wall)

    def _expire_messages(self, channel: str, wall: float) -> None:
        """The stock sweep's, for one channel: expired messages dropped, and the channel
        out of every group (and gone if it holds nothing more)."""
        queue = self.channels.get(channel)
        while queue is not None and not queue.empty() and queue._queue[0][0] < wall:
            queue.get_nowait()
            self._remove_from_groups(channel)
            if queue.empty():
                self.channels.pop(channel, None)
        if queue is not None and queue.empty() and not queue._getters:
            self.channels.pop(channel, None)  # no one receives from it: its consumer is gone

    def _expire_members(self, group: str, joined_before: int) -> None:
        """The stock sweep's, for one group: members that joined before the group expiry leave."""
        members = self.groups.get(group)
        for name, joined in list((members or {}).items()):
            if joined and joined < joined_before:
                members.pop(name, None)

    async def flush(self) -> None:
        await super().flush()
        self._next_sweep = 0.0
        self._unswept_groups, self._unswept_channels = [], []


IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None)})


def copied(message: dict[str, Any]) -> dict[str, Any]:
    """What the stock layer's ``deepcopy`` gives, for less when every value is of an
    immutable type (exactly: a subclass could be mutable), as CCP snapshot messages are."""
    if all(type(value) in IMMUTABLE for value in message.values()):
        return dict(message)
    return deepcopy(message)


def take_last(names: list[str], count: int) -> list[str]:
    """The last ``count`` names (or all, if fewer), taken off the list."""
    taken = names[len(names) - min(count, len(names)) :]
    del names[len(names) - len(taken) :]
    return taken


# In the engine process (engine.process): where group sends go, to the serving process.
_forward: Callable[[str, dict[str, Any]], None] | None = None


def send_group_messages_with(forward: Callable[[str, dict[str, Any]], None]) -> None:
    """From now on, this process's ``group_send_soon`` hands its messages to ``forward``."""
    global _forward
    _forward = forward


def reaches_channel_layer() -> bool:
    """Whether a ``group_send`` made from this (synchronous) thread reaches the sockets.

    Never from a thread running an event loop (``async_to_sync`` cannot wait there). With
    the embedded layer, which lives in the server's event loop, only code the server runs
    (``sync_to_async`` threads) can reach it; a management command or another thread
    cannot, and the sockets' database watchers deliver their changes instead. The engine
    process's sends reach the serving process's layer.
    """
    if _forward is not None:
        return True
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return False
    layer = get_channel_layer()
    if layer is None:
        return False
    if isinstance(layer, InMemoryChannelLayer):
        return getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None
    return True


def server_event_loop() -> asyncio.AbstractEventLoop | None:
    """The server's event loop, from a thread it runs synchronous code in (``sync_to_async``)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is None or getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    return loop if not loop.is_closed() else None


# A group send handed over: layer, group, message, and the future of a thread waiting for it.
Item = tuple[BaseChannelLayer, str, dict[str, Any], "concurrent.futures.Future[None] | None"]


class Outbox:
    """Group sends of one event loop, made from its synchronous threads, sent by one task in
    the order they were made.

    ``async_to_sync(layer.group_send)`` from the engine's thread waits for the event loop to
    take the send, several times per change: measured with py-spy at 1,000 changes/s asked,
    10% of that thread's time was spent waiting so. The engine's thread now hands the send
    over and goes on; one task per loop sends them in order. Past ``limit`` unsent messages
    (a layer that stopped taking them) the thread waits for its own, as before.

    A thread wakes the loop (``call_soon_threadsafe``: a write to the loop's socket) only
    when no wake-up is pending already: sends handed over while the loop is busy go with
    one wake-up, not one each."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.loop, self.limit = loop, limit
        self.messages: deque[Item] = deque()  # guarded by lock
        self.pending = 0  # handed over by threads, not yet sent (guarded by lock)
        self.wake_up_pending = False  # a _wake_up is scheduled on the loop (guarded by lock)
        self.lock = threading.Lock()
        self.sender: asyncio.Task[None] | None = None

    def group_send(self, layer: BaseChannelLayer, group: str, message: dict[str, Any]) -> None:
        with self.lock:
            self.pending += 1
            done: concurrent.futures.Future[None] | None = (
                concurrent.futures.Future() if self.pending > self.limit else None
            )
            self.messages.append((layer, group, message, done))
            wake_up, self.wake_up_pending = not self.wake_up_pending, True
        if wake_up:
            self.loop.call_soon_threadsafe(self._wake_up)
        if done is not None:
            done.result()  # this message sent, or its error raised

    def _wake_up(self) -> None:
        with self.lock:
            self.wake_up_pending = False
        if self.sender is None or self.sender.done():
            self.sender = self.loop.create_task(self._send())

    def _next(self) -> Item | None:
        with self.lock:
            return self.messages.popleft() if self.messages else None

    async def _send(self) -> None:
        while (item := self._next()) is not None:
            layer, group, message, done = item
            try:
                await layer.group_send(group, message)
            except Exception as exc:
                if done is not None:
                    done.set_exception(exc)
                else:
                    logger.exception("Could not send %s to group %s", message.get("type"), group)
            else:
                if done is not None:
                    done.set_result(None)
            finally:
                with self.lock:
                    self.pending -= 1
            # A turn for the consumers before the next send: the embedded layer's group send
            # does not yield (the stock one did, with a task per member), and a burst for one
            # socket would otherwise go past its queue's capacity before it could take any.
            await asyncio.sleep(0)


OUTBOX_LIMIT = 10_000
_outboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox]" = weakref.WeakKeyDictionary()
_outboxes_lock = threading.Lock()


def group_send_soon(group: str, message: dict[str, Any]) -> None:
    """``group_send`` from synchronous code without waiting for it, in order with the other
    sends of this process (see Outbox); outside the server (no event loop to hand it to), it
    is sent at once. Errors of a handed-over send are logged, not raised. In the engine
    process, it goes to the serving process (send_group_messages_with)."""
    if _forward is not None:
        _forward(group, message)
        return
    layer = get_channel_layer()
    if layer is None:
        return
    loop = server_event_loop()
    if loop is None:
        async_to_sync(layer.group_send)(group, message)
        return
    with _outboxes_lock:
        outbox = _outboxes.get(loop)
        if outbox is None:
            outbox = _outboxes[loop] = Outbox(loop, OUTBOX_LIMIT)
    outbox.group_send(layer, group, message)


class PipelinedRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """channels_redis' pub/sub layer, which can also send several group messages in one
    round trip to Redis (group_send_many): one PUBLISH each, pipelined, in order.

    An engine process's change sends its snapshots and pokes to the serving process, which
    sends them on (engine.process). One at a time, each was a write to Redis and a wait for
    its reply: 49% of a scale-out worker's event loop at 1,000 changes/s asked (py-spy),
    a third of it in the write alone. A group of calls now comes as one batch.

    It uses the pub/sub layer's own names, shards and connections (``_get_layer``,
    ``_get_shard``, ``_get_group_channel_name``): channels_redis is pinned, and the tests
    deliver through this layer."""

    async def group_send_many(self, sends: list[tuple[str, dict[str, Any]]]) -> None:
        layer = self._get_layer()
        by_shard: dict[Any, list[tuple[str, bytes]]] = {}
        for group, message in sends:
            channel = layer._get_group_channel_name(group)
            by_shard.setdefault(layer._get_shard(channel), []).append((channel, self.serialize(message)))
        for shard, published in by_shard.items():
            async with shard._lock:  # as its publish: a connection made if it has none
                shard._ensure_redis()
                pipeline = shard._redis.pipeline(transaction=False)
                for channel, payload in published:
                    pipeline.publish(channel, payload)
                await pipeline.execute()


async def group_send_all(layer: BaseChannelLayer, sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Each group message in order: in one batch where the layer takes one (group_send_many),
    else one by one, with the consumers' turn after each (as Outbox gives them). Failures
    are logged, not raised: what failed to reach a socket, its watcher resyncs."""
    if isinstance(layer, PipelinedRedisPubSubChannelLayer):
        try:
            await layer.group_send_many(sends)
        except Exception:
            logger.exception("Could not send %s group messages", len(sends))
        return
    for group, message in sends:
        try:
            await layer.group_send(group, message)
        except Exception:
            logger.exception("Could not send %s to group %s", message.get("type"), group)
        # A turn for the consumers before the next one (Outbox._send).
        await asyncio.sleep(0)
