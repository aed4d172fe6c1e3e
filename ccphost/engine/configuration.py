"""An instance's configuration (agent states, routing profiles with their queues, webhook
endpoints) cached in each process, under the instance's configuration stamp.

Saving or deleting any such row (or the instance) gives the instance's InstanceSettings a
new random stamp, in the same transaction. Every engine transaction reads the settings row
with the lock it takes anyway, so a cached read costs no query, and every process sees a
change once it commits. A stamp is random, not a counter, so an instance row reused after a
delete (SQLite reuses primary keys) never meets an older entry.

Cached values are shared between callers: never change one."""

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from ccphost.engine.models import AgentState, InstanceSettings, Queue, RoutingProfile, RoutingProfileQueue
from ccphost.instances.models import Instance

T = TypeVar("T")

_cache: dict[tuple[int, Any], tuple[uuid.UUID, Any]] = {}


def cached(settings: InstanceSettings, key: Any, build: Callable[[], T]) -> T:
    """``build()``'s value for ``key`` of the settings' instance, built once per stamp."""
    entry = _cache.get((settings.instance_id, key))
    if entry is not None and entry[0] == settings.config_stamp:
        return entry[1]
    value = build()
    _cache[(settings.instance_id, key)] = (settings.config_stamp, value)
    return value


def new_stamp(instance_id: int | None) -> None:
    """Invalidate every process's cached configuration of the instance."""
    if instance_id is not None:
        InstanceSettings.objects.filter(instance_id=instance_id).update(config_stamp=uuid.uuid4())


def _row_changed(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    if isinstance(instance, Instance):
        new_stamp(instance.pk)
    elif isinstance(instance, RoutingProfileQueue):
        # In a cascade the queue may be gone already; its own delete gave the new stamp.
        queues = Queue.objects.filter(pk=instance.queue_id)
        new_stamp(queues.values_list("instance_id", flat=True).first())
    else:
        new_stamp(instance.instance_id)  # type: ignore[attr-defined]


def watch(*models: type[Model]) -> None:
    """Give the instance a new stamp whenever a row of one of ``models`` is saved or deleted."""
    for model in models:
        uid = f"ccphost.engine.configuration.{model._meta.label}"
        post_save.connect(_row_changed, sender=model, dispatch_uid=uid)
        post_delete.connect(_row_changed, sender=model, dispatch_uid=uid)


def watch_engine_configuration() -> None:
    watch(Instance, AgentState, Queue, RoutingProfile, RoutingProfileQueue)
