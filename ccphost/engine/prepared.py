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

import datetime
import threading
import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import ForeignKey, JSONField, Model, OneToOneField, QuerySet, fields
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

    def run(self, connection: Any, args: tuple[Any, ...]) -> list[Any]:
        with connection.cursor() as cursor:
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
        connection = connections[DEFAULT_DB_ALIAS]
        plan = plans.get(id(connection))
        if plan is None:
            plan = plans[id(connection)] = _Plan(self.build(*args), args)
        return plan.run(connection, args)


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
        self.statements: dict[tuple[str, ...], tuple[str, DbValues]] = {}

    def __call__(self, obj: M) -> None:
        connection = connections[DEFAULT_DB_ALIAS]
        loaded: dict[str, Any] | None = obj.__dict__.get(LOADED)
        fields = self.fields
        if loaded is not None:
            fields = [f for f in fields if f.attname not in loaded or loaded[f.attname] != getattr(obj, f.attname)]
            if not fields:
                return
        key = tuple(f.attname for f in fields)
        statement = self.statements.get(key)
        if statement is None:
            quote = connection.ops.quote_name
            columns = ", ".join(f"{quote(f.column)} = %s" for f in fields)
            sql = f"UPDATE {quote(self.table)} SET {columns} WHERE {quote(self.pk.column)} = %s"  # noqa: S608 (names, not data)
            statement = self.statements[key] = (sql, DbValues(fields))
        sql, values = statement
        with connection.cursor() as cursor:
            cursor.execute(sql, [*values(obj, connection), obj.pk])
        if loaded is not None:
            loaded.update((f.attname, getattr(obj, f.attname)) for f in fields if f.attname in loaded)


def placeholders(count: int) -> str:
    """``count`` parameter marks for a raw statement's ``IN (...)``: the values stay parameters."""
    return ", ".join(["%s"] * count)


# Where a row read by a PreparedQuery keeps the values it was read with (less its mutable
# ones), for PreparedUpdate to write only what changed.
LOADED = "_prepared_loaded_values"


def mutable_attnames(model: type[Model]) -> frozenset[str]:
    """Fields whose values code may change in place (JSON), so a comparison with the value
    read cannot tell that they changed."""
    return frozenset(f.attname for f in model._meta.concrete_fields if isinstance(f, JSONField))


class DbValues:
    """The values of ``fields`` of an object as a statement's parameters, as ``save()``
    sends them (each field's ``get_db_prep_save``), faster: a value of a field's plain Python
    type (an ``int`` for an integer or a key, a ``str``, an aware ``datetime``, a ``UUID``,
    a JSON ``dict`` or ``list``) goes straight to the database backend's adapter, as
    ``get_db_prep_save`` would end up sending it, without its layers of field methods
    (SQLite: 4.8 µs for a datetime, 2 µs for a key, against 0.2-1 µs). Any other value
    (None, an expression, a naive datetime) and any other field class takes Django's way.
    Tests check that both give the same parameters for every field of the engine's models.
    The adapters are pure functions of the value (the backend's adapters and Django's field
    methods do not query): built with one thread's connection, they serve every thread."""

    def __init__(self, fields: list[Any]) -> None:
        self.fields = list(fields)
        self.adapters: dict[str, list[tuple[str, Callable[[Any], Any]]]] = {}

    def __call__(self, obj: Model, connection: Any) -> list[Any]:
        adapters = self.adapters.get(connection.alias)
        if adapters is None:
            adapters = [(f.attname, value_adapter(f, connection)) for f in self.fields]
            self.adapters[connection.alias] = adapters
        return [adapt(getattr(obj, name)) for name, adapt in adapters]


INTEGER_FIELDS = (
    fields.IntegerField,
    fields.BigIntegerField,
    fields.SmallIntegerField,
    fields.PositiveIntegerField,
    fields.PositiveBigIntegerField,
    fields.PositiveSmallIntegerField,
)
AUTO_FIELDS = (fields.AutoField, fields.BigAutoField, fields.SmallAutoField)


def value_adapter(field: Any, connection: Any) -> Callable[[Any], Any]:
    """``field.get_db_prep_save(value, connection)``, with a shortcut for the plain type of
    an exact field class whose preparation is known (DbValues)."""

    def slow(value: Any) -> Any:
        return field.get_db_prep_save(value, connection=connection)

    kind, ops = type(field), connection.ops
    if kind in (ForeignKey, OneToOneField):
        target = value_adapter(field.target_field, connection)
        return lambda value: target(value) if type(value) is int else slow(value)
    if kind in AUTO_FIELDS:  # AutoFieldMixin: validate_autopk_value, which SQLite and PostgreSQL pass
        return lambda value: value if type(value) is int else slow(value)
    if kind in INTEGER_FIELDS:
        internal_type = field.get_internal_type()
        adapt_integer = ops.adapt_integerfield_value
        return lambda value: adapt_integer(value, internal_type) if type(value) is int else slow(value)
    if kind in (fields.CharField, fields.TextField):
        return lambda value: value if type(value) is str else slow(value)
    if kind is fields.BooleanField:
        return lambda value: value if type(value) is bool else slow(value)
    if kind is fields.UUIDField:
        if connection.features.has_native_uuid_field:
            return lambda value: value if type(value) is uuid.UUID else slow(value)
        return lambda value: value.hex if type(value) is uuid.UUID else slow(value)
    if kind is fields.DateTimeField:
        if connection.vendor == "sqlite" and django_settings.USE_TZ:
            tz = connection.timezone  # SQLite's adapt_datetimefield_value: make_naive, then str
            return lambda value: (
                str(value.astimezone(tz).replace(tzinfo=None))
                if type(value) is datetime.datetime and value.tzinfo is not None
                else slow(value)
            )
        adapt_datetime = ops.adapt_datetimefield_value
        return lambda value: (
            adapt_datetime(value) if type(value) is datetime.datetime and value.tzinfo is not None else slow(value)
        )
    if kind is JSONField:
        adapt_json, encoder = ops.adapt_json_value, field.encoder
        return lambda value: adapt_json(value, encoder) if type(value) in (dict, list) else slow(value)
    return slow
