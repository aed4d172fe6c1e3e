"""Make Amazon Connect's approved origins for an instance equal ccphost's.

ccphost is the source of truth: its approved origins, plus ccphost's own SITE_URL origin
(the agent page on ccphost embeds Amazon's CCP, so Amazon must approve it too). Changes
made on Amazon's side are written to the origin audit log with source "sync".
"""

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from ccphost.instances.models import Instance, OriginAudit
from ccphost.instances.origins import OriginError, normalize_origin, origin_of_url
from ccphost.instances.services import Actor
from integrations.connect.client import OriginSyncError, connect_client, describe_aws_error

AWS_ERRORS = (BotoCoreError, ClientError)


@dataclass(frozen=True)
class OriginSyncPlan:
    """What a sync does on Amazon's side. ``to_remove`` holds origins exactly as Amazon has them."""

    to_add: list[str]
    to_remove: list[str]
    unchanged: list[str]

    @property
    def has_changes(self) -> bool:
        return bool(self.to_add or self.to_remove)


def check_syncable(instance: Instance) -> None:
    if instance.kind != Instance.Kind.AMAZON_CONNECT:
        raise OriginSyncError(f"{instance.alias} is hosted by ccphost: only Amazon Connect instances are synced.")
    if not instance.aws_region or not instance.aws_instance_id:
        raise OriginSyncError(f"{instance.alias} needs its AWS region and Amazon Connect instance id to sync.")


def wanted_origins(instance: Instance) -> set[str]:
    """ccphost's approved origins for the instance plus ccphost's own origin."""
    wanted = set(instance.origins.values_list("origin", flat=True))
    wanted.add(origin_of_url(settings.SITE_URL))
    return wanted


def amazon_origins(instance: Instance, client: Any) -> list[str]:
    """Every origin Amazon approves for the instance, all pages of them."""
    paginator = client.get_paginator("list_approved_origins")
    origins: list[str] = []
    try:
        for page in paginator.paginate(InstanceId=str(instance.aws_instance_id)):
            origins.extend(page.get("Origins", []))
    except AWS_ERRORS as exc:
        raise OriginSyncError(describe_aws_error(instance, exc)) from exc
    return origins


def comparable(origin: str) -> str | None:
    """Amazon's origin in ccphost's normal form, or None if ccphost would never approve it."""
    try:
        return normalize_origin(origin, allow_http_loopback=True)
    except OriginError:
        return None


def plan_origin_sync(instance: Instance, client: Any) -> OriginSyncPlan:
    """Compare Amazon's approved origins with ccphost's; changes nothing."""
    check_syncable(instance)
    wanted = wanted_origins(instance)
    present: dict[str, str] = {}  # normalized -> as Amazon has it
    to_remove: list[str] = []
    for raw in amazon_origins(instance, client):
        normal = comparable(raw)
        if normal in wanted and normal not in present:
            present[normal] = raw
        else:  # unwanted, not an origin ccphost accepts, or a second spelling of one
            to_remove.append(raw)
    return OriginSyncPlan(
        to_add=sorted(wanted - present.keys()),
        to_remove=sorted(to_remove),
        unchanged=sorted(present),
    )


def audit_sync(instance: Instance, actor: Actor, action: str, origin: str) -> None:
    OriginAudit.objects.create(
        instance=instance,
        instance_alias=instance.alias,
        action=action,
        old_value=origin if action == OriginAudit.Action.REMOVED else "",
        new_value=origin if action == OriginAudit.Action.ADDED else "",
        actor=actor.db_user,
        actor_name=actor.display_name,
        source=OriginAudit.Source.SYNC,
        remote_addr=actor.remote_addr,
    )


def apply_origin_sync(instance: Instance, plan: OriginSyncPlan, client: Any, actor: Actor) -> list[str]:
    """Carry out the plan on Amazon, removals first (room under Amazon's quota), one call per
    origin. Each change is audited as soon as Amazon confirms it, so when a call fails the
    changes before it are recorded, and the error says what was done and what was not."""
    check_syncable(instance)
    instance_id = str(instance.aws_instance_id)
    steps = [(OriginAudit.Action.REMOVED, o) for o in plan.to_remove] + [
        (OriginAudit.Action.ADDED, o) for o in plan.to_add
    ]
    done: list[str] = []
    for number, (action, origin) in enumerate(steps, start=1):
        added = action == OriginAudit.Action.ADDED
        call = client.associate_approved_origin if added else client.disassociate_approved_origin
        try:
            call(InstanceId=instance_id, Origin=origin)
        except AWS_ERRORS as exc:
            raise OriginSyncError(
                partial_failure_message(instance, exc, action, origin, number, len(steps), done)
            ) from exc
        audit_sync(instance, actor, action, origin)
        done.append(f"{'+' if added else '-'} {origin}")
    return done


def partial_failure_message(
    instance: Instance,
    exc: Exception,
    action: str,
    origin: str,
    number: int,
    total: int,
    done: list[str],
) -> str:
    verb = "adding" if action == OriginAudit.Action.ADDED else "removing"
    summary = f"Sync stopped at change {number} of {total} ({verb} {origin}). "
    summary += f"Done and audited: {', '.join(done)}. " if done else "Nothing was changed on Amazon. "
    return summary + describe_aws_error(instance, exc) + " Run the sync again to finish."


def format_plan(plan: OriginSyncPlan) -> str:
    """The difference as lines: '+ origin' to add, '- origin' to remove, '  origin' unchanged."""
    lines = [f"+ {o}" for o in plan.to_add] + [f"- {o}" for o in plan.to_remove] + [f"  {o}" for o in plan.unchanged]
    if plan.has_changes:
        lines.append(f"{len(plan.to_add)} to add, {len(plan.to_remove)} to remove, {len(plan.unchanged)} unchanged.")
    else:
        lines.append(f"In sync: {len(plan.unchanged)} approved origins.")
    return "\n".join(lines)


def sync_instance_origins(
    instance: Instance, *, dry_run: bool, actor: Actor, client: Any = None
) -> tuple[OriginSyncPlan, bool]:
    """Plan the sync and, unless ``dry_run``, apply it. Returns (plan, applied); raises
    ``OriginSyncError`` with a message for a person when AWS or the instance is the problem."""
    check_syncable(instance)
    if client is None:
        try:
            client = connect_client(instance)
        except AWS_ERRORS as exc:
            raise OriginSyncError(describe_aws_error(instance, exc)) from exc
    plan = plan_origin_sync(instance, client)
    if dry_run or not plan.has_changes:
        return plan, False
    apply_origin_sync(instance, plan, client, actor)
    return plan, True
