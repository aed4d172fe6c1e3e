"""Django's SQLite backend, with each statement's placeholder conversion done once.

Django's SQLite cursor turns every statement's ``%s`` placeholders into ``?`` with a
regular expression at each execution; the engine runs the same few statements all day,
and that conversion was 8% of an engine change's CPU (measured with py-spy,
bench.engine_cost). The conversion of a statement is kept (up to 4,096 statements)."""

from functools import lru_cache
from typing import Any

from django.db.backends.sqlite3 import base


@lru_cache(maxsize=4096)
def qmark_style(query: str) -> str:
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class CursorWrapper(base.SQLiteCursorWrapper):
    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is None:
            return qmark_style(query)
        return str(super().convert_query(query, param_names=param_names))  # type: ignore[misc]  # Django 5.2 has it, its stubs not


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name: Any = None) -> Any:
        return self.connection.cursor(factory=CursorWrapper)
