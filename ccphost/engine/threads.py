"""Where the engine's synchronous work runs when the event loop asks for it.

`database_sync_to_async` runs everything in one thread per process: one change at a time,
each waiting for its database round trips (about 11 of 0.3 ms on PostgreSQL, measured on
the project's VM). On PostgreSQL, changes of different agents need not wait for each other
(engine.core's row locks), so they run in a pool of ``CCPHOST_ENGINE_THREADS`` threads,
each with its own database connection. SQLite takes one writer at a time: one thread.

Calls from one CCP socket stay in order: its consumer awaits each before the next frame."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import DatabaseSyncToAsync, database_sync_to_async
from django.conf import settings
from django.db import connection

_pool: ThreadPoolExecutor | None = None


def engine_threads() -> int:
    return 1 if connection.vendor == "sqlite" else max(1, settings.CCPHOST_ENGINE_THREADS)


def engine_sync_to_async(func: Callable[..., Any]) -> DatabaseSyncToAsync:
    global _pool
    threads = engine_threads()
    if threads == 1:
        return database_sync_to_async(func)
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ccphost-engine")
    return database_sync_to_async(func, thread_sensitive=False, executor=_pool)
