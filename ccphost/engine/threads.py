"""Where the engine's synchronous work runs when the event loop asks for it.

`database_sync_to_async` runs everything in one thread per process: one change at a time,
each waiting for its database round trips (about 11 of 0.3 ms on PostgreSQL, measured on
the project's VM). On PostgreSQL, changes of different agents need not wait for each other
(engine.core's row locks), so they run in a pool of ``CCPHOST_ENGINE_THREADS`` threads,
each with its own database connection. SQLite takes one writer at a time: one thread.

Calls from one CCP socket stay in order: its consumer awaits each before the next frame.

On these threads, and on an engine process's (engine.process: engine_call_connection), a
connection's health check (Django's ``SELECT 1`` before a connection's first query of each
call, with ``conn_health_checks``) runs only after the connection has been idle for
HEALTH_CHECK_AFTER seconds: under load it was one round trip in ten and 8% of the engine
threads' samples (py-spy), for connections that had just answered. A connection cut while
busy fails one call (in an engine process, one group, whose calls then run alone); Django
then closes it and the next call opens a new one."""

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

from asgiref.sync import SyncToAsync
from channels.db import DatabaseSyncToAsync, database_sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections

from ccphost.affinity import unpin_this_thread

HEALTH_CHECK_AFTER = 1.0  # seconds a connection has been idle before its health is checked

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_local = threading.local()


@contextmanager
def engine_call_connection() -> Iterator[None]:
    """This thread's database connection around one engine call (or an engine process's
    group of calls): an old or broken one closed before and after, as Django does around a
    request, and its health checked only if it was idle for HEALTH_CHECK_AFTER seconds."""
    close_old_connections()
    last_used = getattr(_local, "last_used", None)
    fresh = last_used is not None and time.monotonic() - last_used < HEALTH_CHECK_AFTER
    if connection.connection is not None and fresh:
        connection.health_check_done = True  # type: ignore[attr-defined]  # Django 4.1+ has it, its stubs not
    try:
        yield
    finally:
        close_old_connections()
        _local.last_used = time.monotonic()


class EngineSyncToAsync(DatabaseSyncToAsync):
    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        with engine_call_connection():
            return SyncToAsync.thread_handler(self, loop, *args, **kwargs)


def engine_threads() -> int:
    """How many threads run engine calls: called on the event loop, so it reads the database
    settings, not ``connection``: on the event loop Django's connections are per task
    (asgiref's Local follows the task's context), and touching one made each task a
    DatabaseWrapper of its own (16 tracked objects, in reference cycles: each CCP socket
    held one, and left it to the cycle collector when it closed)."""
    return 1 if is_sqlite() else max(1, settings.CCPHOST_ENGINE_THREADS)


def is_sqlite() -> bool:
    return "sqlite" in settings.DATABASES[DEFAULT_DB_ALIAS]["ENGINE"]


def engine_sync_to_async(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """``func`` as a coroutine function that runs it where the engine's changes run: in the
    engine process of an embedded server (engine.process), else on the engine's threads."""
    from ccphost.engine.process import running_engine

    engine = running_engine()
    if engine is not None:
        return partial(engine.call, func)
    global _pool, _pool_size
    threads = engine_threads()
    if threads == 1:
        return database_sync_to_async(func)
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ccphost-engine")
        _pool_size = threads
    return EngineSyncToAsync(func, thread_sensitive=False, executor=_pool)


_reader: ThreadPoolExecutor | None = None


def reader_sync_to_async(func: Callable[..., Any]) -> DatabaseSyncToAsync:
    """For reads that change nothing and may take a while (the CCP sockets' snapshot
    watcher, whose pass over every agent of a process with 10,000 sockets took 20 to 75 ms):
    one thread of their own, with its own connection. With SQLite, database_sync_to_async's
    thread is the engine's, and changes waited behind such a pass (API round trips of 100 ms
    and more at 10,000 sockets); readers and the writer of a WAL database do not wait for
    each other."""
    global _reader
    if _reader is None:
        # Free to run on any of the process's CPUs (ccphost.affinity): its reads are mostly
        # SQLite's own work, without the GIL, which another core can do alongside.
        _reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ccphost-reader", initializer=unpin_this_thread)
    return EngineSyncToAsync(func, thread_sensitive=False, executor=_reader)


def close_engine_connections() -> None:
    """Close the database connection of each engine thread and of the reader thread (they
    are persistent), and let their pools go: for a test session that drops its database
    next, which PostgreSQL refuses while a connection is open."""
    global _pool, _reader
    pools = [(_pool, _pool_size), (_reader, 1)]
    _pool = _reader = None
    for pool, threads in pools:
        if pool is not None:
            close_pool_connections(pool, threads)


def close_pool_connections(pool: ThreadPoolExecutor, threads: int) -> None:
    """Each of the pool's ``threads`` takes one closing task (they wait for each other)."""
    everyone = threading.Barrier(threads)

    def close() -> None:
        connections.close_all()
        everyone.wait(timeout=10)

    for done in [pool.submit(close) for _ in range(threads)]:
        done.result()
    pool.shutdown()
