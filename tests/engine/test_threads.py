"""The engine's threads on PostgreSQL: a connection's health is checked after it was idle,
not at every call; one cut while busy costs one call."""

import asyncio
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
