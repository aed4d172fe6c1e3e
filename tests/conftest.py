"""Shared fixtures. Tests use the real database of the settings (SQLite by default,
PostgreSQL when DATABASE_URL is set) and the real channel layer."""

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
