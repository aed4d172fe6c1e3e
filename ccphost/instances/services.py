"""Every change to approved origins goes through here: validated as a whole, written in one
transaction with its audit rows, and the cached origin set invalidated after commit."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.cache import cache
from django.db import transaction

from ccphost.instances.models import ApprovedOrigin, Instance, OriginAudit
from ccphost.instances.origins import OriginError, normalize_origin


class OriginChangeError(ValueError):
    """A change to approved origins was refused; nothing was written."""


@dataclass(frozen=True)
class Actor:
    """Who made a change and from where, for the audit log."""

    source: str
    user: AbstractBaseUser | AnonymousUser | None = None
    remote_addr: str | None = None
    name: str = ""

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.user is not None and self.user.is_authenticated:
            return str(self.user.get_username())
        return f"({self.source})"

    @property
    def db_user(self) -> User | None:
        return self.user if isinstance(self.user, User) else None


def _cache_key(alias: str) -> str:
    return f"ccphost:approved-origins:{alias}"


def approved_origins(alias: str) -> frozenset[str]:
    """The normalized origins approved for the instance ``alias`` (empty if unknown)."""
    key = _cache_key(alias)
    cached = cache.get(key)
    if cached is not None:
        return frozenset(cached)
    origins = list(ApprovedOrigin.objects.filter(instance__alias=alias).values_list("origin", flat=True))
    # Bounded lifetime: a reader racing a commit can cache a stale set for at most this long.
    cache.set(key, origins, timeout=300)
    return frozenset(origins)


def invalidate_origins(alias: str) -> None:
    transaction.on_commit(lambda: cache.delete(_cache_key(alias)))


def normalize_all(raws: Iterable[str]) -> list[str]:
    """Normalize every origin, reporting all bad ones at once, and refuse duplicates."""
    normalized: list[str] = []
    problems: list[str] = []
    for raw in raws:
        try:
            origin = normalize_origin(raw)
        except OriginError as exc:
            problems.append(f"{raw!r}: {exc}")
            continue
        if origin in normalized:
            problems.append(f"{raw!r}: given twice (as {origin}).")
        normalized.append(origin)
    if problems:
        raise OriginChangeError("; ".join(problems))
    return normalized


def _audit(instance: Instance, actor: Actor, action: str, old: str = "", new: str = "") -> None:
    OriginAudit.objects.create(
        instance=instance,
        instance_alias=instance.alias,
        action=action,
        old_value=old,
        new_value=new,
        actor=actor.db_user,
        actor_name=actor.display_name,
        source=actor.source,
        remote_addr=actor.remote_addr,
    )


def _check_limit(instance: Instance, count: int) -> None:
    limit = settings.CCPHOST_MAX_ORIGINS_PER_INSTANCE
    if count > limit:
        raise OriginChangeError(f"An instance can have at most {limit} approved origins; this would make {count}.")


def _lock(instance: Instance) -> Instance:
    # Serialize changes to one instance's origins so the limit and uniqueness hold.
    return Instance.objects.select_for_update().get(pk=instance.pk)


def approve_origins(instance: Instance, raws: Sequence[str], actor: Actor) -> list[ApprovedOrigin]:
    """Approve every origin in ``raws``, or none of them."""
    if not raws:
        raise OriginChangeError("Give at least one origin.")
    origins = normalize_all(raws)
    with transaction.atomic():
        instance = _lock(instance)
        existing = set(instance.origins.values_list("origin", flat=True))
        already = [o for o in origins if o in existing]
        if already:
            raise OriginChangeError(f"Already approved for {instance.alias}: {', '.join(already)}.")
        _check_limit(instance, len(existing) + len(origins))
        created = [
            ApprovedOrigin.objects.create(instance=instance, origin=origin, created_by=actor.db_user)
            for origin in origins
        ]
        for origin in origins:
            _audit(instance, actor, OriginAudit.Action.ADDED, new=origin)
        invalidate_origins(instance.alias)
    return created


def revoke_origins(instance: Instance, raws: Sequence[str], actor: Actor) -> list[str]:
    """Remove every origin in ``raws`` from the instance, or none of them."""
    if not raws:
        raise OriginChangeError("Give at least one origin.")
    origins = normalize_all(raws)
    with transaction.atomic():
        instance = _lock(instance)
        existing = set(instance.origins.values_list("origin", flat=True))
        missing = [o for o in origins if o not in existing]
        if missing:
            raise OriginChangeError(f"Not approved for {instance.alias}: {', '.join(missing)}.")
        instance.origins.filter(origin__in=origins).delete()
        for origin in origins:
            _audit(instance, actor, OriginAudit.Action.REMOVED, old=origin)
        invalidate_origins(instance.alias)
    return origins


def delete_instance(instance: Instance, actor: Actor) -> None:
    """Delete the instance with everything under it: its origins (each removal audited, by
    ``actor``: the audit rows keep the instance's alias) and its contact center."""
    with transaction.atomic():
        instance = _lock(instance)
        for origin in instance.origins.order_by("origin").values_list("origin", flat=True):
            _audit(instance, actor, OriginAudit.Action.REMOVED, old=origin)
        instance.delete()  # the cached origin set goes at commit (signals)


def change_origin(instance: Instance, old_raw: str, new_raw: str, actor: Actor) -> ApprovedOrigin:
    """Replace one approved origin by another."""
    old, new = normalize_all([old_raw]), normalize_all([new_raw])
    with transaction.atomic():
        instance = _lock(instance)
        try:
            row = instance.origins.get(origin=old[0])
        except ApprovedOrigin.DoesNotExist:
            raise OriginChangeError(f"Not approved for {instance.alias}: {old[0]}.") from None
        if old[0] == new[0]:
            return row
        if instance.origins.filter(origin=new[0]).exists():
            raise OriginChangeError(f"Already approved for {instance.alias}: {new[0]}.")
        row.origin = new[0]
        row.save(update_fields=["origin"])
        _audit(instance, actor, OriginAudit.Action.CHANGED, old=old[0], new=new[0])
        invalidate_origins(instance.alias)
    return row


def replace_origins(instance: Instance, raws: Sequence[str], actor: Actor) -> tuple[list[str], list[str]]:
    """Make the approved set exactly ``raws``; returns (added, removed)."""
    wanted = normalize_all(raws)
    _check_limit(instance, len(wanted))
    with transaction.atomic():
        instance = _lock(instance)
        existing = set(instance.origins.values_list("origin", flat=True))
        added = [o for o in wanted if o not in existing]
        removed = sorted(existing - set(wanted))
        instance.origins.filter(origin__in=removed).delete()
        for origin in added:
            ApprovedOrigin.objects.create(instance=instance, origin=origin, created_by=actor.db_user)
            _audit(instance, actor, OriginAudit.Action.ADDED, new=origin)
        for origin in removed:
            _audit(instance, actor, OriginAudit.Action.REMOVED, old=origin)
        if added or removed:
            invalidate_origins(instance.alias)
    return added, removed


def is_origin_approved(alias: str, origin: str | None) -> bool:
    """True when ``origin`` (as a browser sends it) is approved for the instance."""
    if not origin:
        return False
    try:
        normalized = normalize_origin(origin, allow_http_loopback=settings.CCPHOST_ALLOW_HTTP_LOOPBACK)
    except OriginError:
        return False
    return normalized in approved_origins(alias)
