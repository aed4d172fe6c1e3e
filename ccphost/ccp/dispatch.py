"""Consumers whose messages are handled on the event loop at once.

Channels' ``AsyncConsumer.dispatch`` (channels 4.2 and later) first awaits
``aclose_old_connections()`` for every message a consumer handles: Django's
``close_old_connections`` run through ``sync_to_async``, on the process's one
thread-sensitive thread. With SQLite that thread is the engine's (it runs every change), so
each snapshot frame and each incoming frame of every socket waited in line behind engine
changes, and with PostgreSQL it was still a thread hop per message (py-spy on a scale-out
worker: 7% of its event loop's samples, and a thread of its own busy doing it).

ccphost's consumers never use the database on the event loop: their database work goes
through ``database_sync_to_async`` or ``engine_sync_to_async``, which close old connections
before and after each call themselves. So they dispatch directly."""

from typing import Any

from channels.consumer import AsyncConsumer, get_handler_name


class DirectDispatchMixin(AsyncConsumer):
    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
