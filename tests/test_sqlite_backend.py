"""ccphost.db.sqlite3: Django's SQLite backend, converting each statement's placeholders once."""

import pytest
from django.db import connection

from ccphost.db.sqlite3.base import qmark_style

pytestmark = pytest.mark.django_db


@pytest.fixture
def sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("the embedded pass's database (SQLite)")


def test_the_embedded_default_uses_it(sqlite):
    assert connection.settings_dict["ENGINE"] == "ccphost.db.sqlite3"


def test_statements_convert_as_djangos_and_once(sqlite):
    qmark_style.cache_clear()
    statement = "SELECT %s, '100%%', %s"
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute(statement, [1, "two"])
            assert cursor.fetchone() == (1, "100%", "two")
    assert qmark_style.cache_info().misses == 1 and qmark_style.cache_info().hits == 2


def test_named_parameters_still_work(sqlite):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %(a)s, %(b)s", {"a": 1, "b": "two"})
        assert cursor.fetchone() == (1, "two")
