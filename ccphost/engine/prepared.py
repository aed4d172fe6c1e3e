"""The engine's hot lookups, compiled to SQL once per thread instead of at every call.

Django compiles a queryset to SQL each time it runs it; for the engine's few lookups that
run on every change and every socket (an agent row with its relations, its open legs, the
instance's settings row) that compile is most of the cost: measured on the project's VM,
0.70 ms for the agent row with five relations against 0.07 ms for running the same SQL.

A `PreparedQuery` builds its queryset with the first arguments it gets, keeps the SQL and
Django's own row-to-model plan (the compiler's select list and related populators), and
for later arguments only runs the SQL and builds the models, the way `ModelIterable` does.
The plan is kept per thread because a compiler belongs to its thread's connection. Only
shapes whose SQL parameters are exactly the arguments, in order, can be prepared: anything
else is refused when first used, so a test finds it."""

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import JSONField, Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]  # Django's own row plan

M = TypeVar("M", bound=Model)


class _Plan:
    def __init__(self, queryset: QuerySet[Any], args: tuple[Any, ...]) -> None:
        self.db = queryset.db
        self.compiler = queryset.query.get_compiler(using=self.db)
        self.sql, params = self.compiler.as_sql()  # also fills select and klass_info
        if tuple(params) != args:
            raise ValueError(f"cannot prepare a query whose parameters {params!r} are not its arguments {args!r}")
        klass_info = self.compiler.klass_info
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [column[0].target.attname for column in self.compiler.select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, self.compiler.select, self.db)
        self.mutable = mutable_attnames(self.model)
        self.annotations = dict(self.compiler.annotation_col_map or {})  # name: column, as ModelIterable sets them
        columns = [column[0] for column in self.compiler.select[: self.compiler.col_count]]
        self.converters = self.compiler.get_converters(columns)

    def run(self, args: tuple[Any, ...]) -> list[Any]:
        with connections[self.db].cursor() as cursor:
            cursor.execute(self.sql, args)
            rows = cursor.fetchall()
        objects = []
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        for row in rows:
            values = row[self.start : self.end]
            obj = self.model.from_db(self.db, self.init_list, values)
            obj.__dict__[LOADED] = {
                name: value for name, value in zip(self.init_list, values, strict=True) if name not in self.mutable
            }
            for populator in self.populators:
                populator.populate(row, obj)
            for name, column in self.annotations.items():
                setattr(obj, name, row[column])
            objects.append(obj)
        return objects


class PreparedQuery(Generic[M]):
    """``build(*args)`` gives the queryset; calling the prepared query gives its rows."""

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self.build = build
        self.local = threading.local()

    def __call__(self, *args: Any) -> list[M]:
        plans: dict[int, _Plan] = self.local.__dict__.setdefault("plans", {})
        # Keyed by the connection object the plan's compiler belongs to (the engine uses
        # the default database only).
        key = id(connections[DEFAULT_DB_ALIAS])
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = _Plan(self.build(*args), args)
        return plan.run(args)


class PreparedUpdate(Generic[M]):
    """``UPDATE`` of one row of ``model`` by primary key, writing ``fields`` (default: every
    concrete field), with its SQL built once per set of columns: ``Model.save()`` builds a
    queryset, a filter and the statement at every call (on SQLite, 15% of an engine change,
    measured with py-spy). Like ``save(update_fields=...)``, without its signals: for
    engine rows only.

    A row read by a PreparedQuery is written only where it changed since: the fields whose
    values differ from those read, and its JSON fields, which code may change in place. An
    engine change alters a few columns of an agent; writing all 21 rewrote the index
    entries of the unchanged ones too (SQLite: 19 pages written per status change, 13
    without them)."""

    def __init__(self, model: type[M], fields: list[str] | None = None) -> None:
        meta = model._meta
        self.fields = [
            f
            for f in meta.concrete_fields
            if not f.primary_key and (fields is None or f.name in fields or f.attname in fields)
        ]
        if fields is not None and len(self.fields) != len(fields):
            raise ValueError(f"unknown fields of {model.__name__}: {fields}")
        self.table, self.pk = meta.db_table, meta.pk
        self.statements: dict[tuple[str, ...], str] = {}

    def __call__(self, obj: M) -> None:
        connection = connections[DEFAULT_DB_ALIAS]
        loaded: dict[str, Any] | None = obj.__dict__.get(LOADED)
        fields = self.fields
        if loaded is not None:
            fields = [f for f in fields if f.attname not in loaded or loaded[f.attname] != getattr(obj, f.attname)]
            if not fields:
                return
        key = tuple(f.attname for f in fields)
        sql = self.statements.get(key)
        if sql is None:
            quote = connection.ops.quote_name
            columns = ", ".join(f"{quote(f.column)} = %s" for f in fields)
            sql = self.statements[key] = f"UPDATE {quote(self.table)} SET {columns} WHERE {quote(self.pk.column)} = %s"  # noqa: S608 (names, not data)
        with connection.cursor() as cursor:
            cursor.execute(sql, [*db_values(obj, fields, connection), obj.pk])
        if loaded is not None:
            loaded.update((f.attname, getattr(obj, f.attname)) for f in fields if f.attname in loaded)


# Where a row read by a PreparedQuery keeps the values it was read with (less its mutable
# ones), for PreparedUpdate to write only what changed.
LOADED = "_prepared_loaded_values"


def mutable_attnames(model: type[Model]) -> frozenset[str]:
    """Fields whose values code may change in place (JSON), so a comparison with the value
    read cannot tell that they changed."""
    return frozenset(f.attname for f in model._meta.concrete_fields if isinstance(f, JSONField))


def db_values(obj: Model, fields: list[Any], connection: Any) -> list[Any]:
    """The values of ``fields`` of ``obj`` as a statement's parameters, as ``save()`` sends them."""
    return [f.get_db_prep_save(getattr(obj, f.attname), connection=connection) for f in fields]
