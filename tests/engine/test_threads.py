"""The engine's threads on PostgreSQL: a connection's health is checked after it was idle,
not at every call; one cut while busy costs one call. And the reader thread, beside them."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.db import Error, connection

from ccphost.engine import threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("engine threads run on PostgreSQL (SQLite: one thread, no health checks)")


@pytest.fixture
def engine_thread():
    """One engine thread of its own, so that successive calls share a connection."""
    executor = ThreadPoolExecutor(max_workers=1)
    yield lambda func: threads.EngineSyncToAsync(func, thread_sensitive=False, executor=executor)
    executor.submit(lambda: connection.close()).result()
    executor.shutdown()


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@sync_to_async(thread_sensitive=False)
def cut(pid: int) -> None:
    """pg_terminate_backend, from a connection of another thread."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        connection.close()


async def test_a_connection_cut_while_busy_fails_one_call_then_is_replaced(postgresql, engine_thread):
    first = await engine_thread(backend_pid)()
    await cut(first)
    with pytest.raises(Error):
        await engine_thread(backend_pid)()  # used a moment ago: not checked first
    assert await engine_thread(backend_pid)() != first


async def test_a_connection_idle_for_a_while_is_checked_first(postgresql, engine_thread, monkeypatch):
    monkeypatch.setattr(threads, "HEALTH_CHECK_AFTER", 0.2)
    first = await engine_thread(backend_pid)()
    await cut(first)
    await asyncio.sleep(0.3)
    assert await engine_thread(backend_pid)() != first  # the check found it cut: no error


@sync_to_async(thread_sensitive=False)
def live_backends(pids: set[int]) -> set[int]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])
            return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


async def test_closing_the_engine_threads_closes_each_ones_connection(postgresql, settings):
    """What a test session does before dropping its database (tests/conftest.py)."""
    settings.CCPHOST_ENGINE_THREADS = 2
    threads.close_engine_connections()  # a pool of this size, started afresh
    gate = asyncio.Event()

    def pid_then_wait() -> int:
        pid = backend_pid()
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(timeout=10)  # both threads busy at once
        return pid

    loop = asyncio.get_running_loop()
    calls = [asyncio.ensure_future(threads.engine_sync_to_async(pid_then_wait)()) for _ in range(2)]
    await asyncio.sleep(0.5)
    gate.set()
    pids = set(await asyncio.gather(*calls))
    assert len(pids) == 2 and await live_backends(pids) == pids
    await sync_to_async(threads.close_engine_connections, thread_sensitive=False)()
    for _ in range(50):
        if not await live_backends(pids):
            break
        await asyncio.sleep(0.1)
    assert await live_backends(pids) == set()


async def test_reads_run_beside_the_engine_thread():
    """The snapshot watcher's reads (reader_sync_to_async) never wait for an engine change,
    nor changes for them: with SQLite, the engine's thread is database_sync_to_async's."""
    reader_busy, engine_busy = threading.Event(), threading.Event()
    reading = asyncio.ensure_future(threads.reader_sync_to_async(reader_busy.wait)())
    try:
        assert await asyncio.wait_for(threads.engine_sync_to_async(lambda: "changed")(), 5) == "changed"
    finally:
        reader_busy.set()
    await reading
    changing = asyncio.ensure_future(sync_to_async(engine_busy.wait)())  # SQLite: the engine's thread
    try:
        assert await asyncio.wait_for(threads.reader_sync_to_async(lambda: "read")(), 5) == "read"
    finally:
        engine_busy.set()
    await changing


async def test_closing_also_closes_the_reader_threads_connection(postgresql):
    pid = await threads.reader_sync_to_async(backend_pid)()
    assert await live_backends({pid}) == {pid}
    await sync_to_async(threads.close_engine_connections, thread_sensitive=False)()
    for _ in range(50):
        if not await live_backends({pid}):
            break
        await asyncio.sleep(0.1)
    assert await live_backends({pid}) == set()
