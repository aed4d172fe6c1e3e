"""Consumers whose messages are handled on the event loop at once, by a dispatch loop that
makes no task per message.

Channels' ``AsyncConsumer.dispatch`` (channels 4.2 and later) first awaits
``aclose_old_connections()`` for every message a consumer handles: Django's
``close_old_connections`` run through ``sync_to_async``, on the process's one
thread-sensitive thread. With SQLite that thread is the engine's (it runs every change), so
each snapshot frame and each incoming frame of every socket waited in line behind engine
changes, and with PostgreSQL it was still a thread hop per message (py-spy on a scale-out
worker: 7% of its event loop's samples, and a thread of its own busy doing it).

ccphost's consumers never use the database on the event loop: their database work goes
through ``database_sync_to_async`` or ``engine_sync_to_async``, which close old connections
before and after each call themselves. So they dispatch directly.

Channels' loop (``channels.utils.await_many_dispatch``) also makes, for every message, a
new task to receive the next one and an ``asyncio.wait`` over both sources (its futures and
callbacks). At 10,000 sockets each such task, its coroutine and context lived until the
socket's next message, long enough to fill the cycle collector's older generations. Here
each source (the client's frames, the channel layer) has one reader task for the socket's
life; a lock lets one message be handled at a time, so handlers never overlap, as in
Channels, and each reader takes its next message only once the last is handled."""

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

Source = Callable[[], Awaitable[dict[str, Any]]]


class DirectDispatchMixin(AsyncConsumer):
    scope: Any  # as Channels leaves it: untyped

    async def __call__(self, scope: dict[str, Any], receive: Source, send: Callable[..., Any]) -> None:
        """Channels' ``AsyncConsumer.__call__`` with ``dispatch_in_turn`` for its loop."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await dispatch_in_turn(sources, self.dispatch)

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


async def dispatch_in_turn(sources: list[Source], dispatch: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Each source read by one task until a handler or a source raises (StopConsumer: the
    consumer is done), its messages dispatched in order, one handler at a time across the
    sources. Raises what the first reader to end raised (of two ending at once, the
    first source's); the others are cancelled."""
    turns = Turns(dispatch)
    readers = [asyncio.ensure_future(turns.read(source)) for source in sources]
    try:
        done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
        ended = [reader.exception() for reader in readers if reader in done]  # each one retrieved
        raise next(error for error in ended if error is not None)
    finally:
        running = [reader for reader in readers if not reader.done()]
        for reader in running:
            reader.cancel()
        for reader in running:
            with contextlib.suppress(asyncio.CancelledError):
                await reader


class Turns:
    """The readers' shared turn (one object a socket, where a closure made four: at 10,000
    sockets every object held for a socket's life is one the cycle collector walks)."""

    __slots__ = ("dispatch", "turn")

    def __init__(self, dispatch: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.dispatch = dispatch
        self.turn = asyncio.Lock()

    async def read(self, source: Source) -> None:
        while True:
            message = await source()
            async with self.turn:
                await self.dispatch(message)
