"""Shared fixtures. Tests use the real database of the settings (SQLite by default,
PostgreSQL when DATABASE_URL is set) and the real channel layer."""

import asyncio
from collections.abc import Iterator

import pytest
from django.core.cache import cache

# Browser fixtures (ccphost served over ASGI, Chromium) for any test directory.
pytest_plugins = ["tests.browser.fixtures"]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # Database rows roll back after each test but the cache would not.
    cache.clear()


@pytest.fixture
def instance(db):
    from ccphost.instances.models import Instance

    return Instance.objects.create(alias="acme", name="Acme Support")


@pytest.fixture
def admin_user(db, django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture(scope="session", autouse=True)
def _close_thread_connections(django_db_setup: None) -> Iterator[None]:
    """At the session's end, before the test database is dropped: close the persistent
    connections of the threads that ran database work for the event loop (the engine's and
    asgiref's thread-sensitive one), which PostgreSQL would count as users of the database."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    from ccphost.engine.threads import close_engine_connections

    close_engine_connections()
    asyncio.run(sync_to_async(connections.close_all)())
