"""Admin for instances and their approved origins, and the read-only origin audit log.

Origins are edited inline on the instance, but saved through the origin services, so the
admin obeys the same limit, uniqueness and audit rules as the commands and the API.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from ccphost.instances.models import ApprovedOrigin, Instance, OriginAudit
from ccphost.instances.origins import OriginError, normalize_origin
from ccphost.instances.services import (
    Actor,
    OriginChangeError,
    approve_origins,
    change_origin,
    delete_instance,
    revoke_origins,
)


def admin_actor(request: HttpRequest) -> Actor:
    """The signed-in admin user, for the audit log."""
    return Actor(
        source=OriginAudit.Source.ADMIN, user=request.user, remote_addr=request.META.get("REMOTE_ADDR") or None
    )


class ApprovedOriginForm(forms.ModelForm):
    class Meta:
        model = ApprovedOrigin
        fields = ["origin"]

    def clean_origin(self) -> str:
        try:
            return normalize_origin(self.cleaned_data["origin"])
        except OriginError as exc:
            raise ValidationError(str(exc), code="invalid_origin") from None

    def validate_unique(self) -> None:
        # Uniqueness is a property of the whole set: the formset checks it after every
        # rename, removal and addition, and the services check it again under a lock.
        pass


@dataclass
class OriginPlan:
    """What saving the inline will do, in an order the services accept."""

    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed_rows: list[ApprovedOrigin] = field(default_factory=list)


class ApprovedOriginFormSet(forms.BaseInlineFormSet):
    plan: OriginPlan

    def clean(self) -> None:
        self.plan = OriginPlan()
        if any(self.errors):
            return
        saved = self._saved_origins()
        plan = self.plan
        deleted = self.deleted_forms
        for form in self.initial_forms:
            old = saved.get(form.instance.pk)
            if old is None:
                continue
            if form in deleted:
                plan.removed.append(old)
                plan.removed_rows.append(form.instance)
            elif form.has_changed() and form.cleaned_data.get("origin", old) != old:
                plan.changed.append((old, form.cleaned_data["origin"]))
        plan.added = [
            form.cleaned_data["origin"]
            for form in self.extra_forms
            if form not in deleted and form.has_changed() and form.cleaned_data.get("origin")
        ]
        kept = [o for o in saved.values() if o not in plan.removed and o not in dict(plan.changed)]
        self._refuse_duplicates([*kept, *(new for _, new in plan.changed), *plan.added])
        plan.changed = self._ordered_changes(set(saved.values()) - set(plan.removed), plan.changed)
        limit = settings.CCPHOST_MAX_ORIGINS_PER_INSTANCE
        total = len(kept) + len(plan.changed) + len(plan.added)
        if total > limit:
            raise ValidationError(
                f"An instance can have at most {limit} approved origins; this would make {total}.",
                code="too_many_origins",
            )

    def _saved_origins(self) -> dict[int, str]:
        if self.instance.pk is None:
            return {}
        return dict(ApprovedOrigin.objects.filter(instance=self.instance).values_list("pk", "origin"))

    @staticmethod
    def _refuse_duplicates(origins: list[str]) -> None:
        twice = sorted(origin for origin, count in Counter(origins).items() if count > 1)
        if twice:
            raise ValidationError(
                f"Each origin can be approved once; given twice (after normalization): {', '.join(twice)}.",
                code="duplicate_origin",
            )

    @staticmethod
    def _ordered_changes(current: set[str], changes: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Order renames so none collides with an origin that is renamed later (a -> b, b -> c)."""
        pending, ordered = list(changes), []
        while pending:
            ready = next((c for c in pending if c[1] not in current), None)
            if ready is None:
                raise ValidationError(
                    "These origins swap values; change one of them, save, then the other: "
                    + ", ".join(f"{old} -> {new}" for old, new in pending),
                    code="origin_swap",
                )
            pending.remove(ready)
            ordered.append(ready)
            current.discard(ready[0])
            current.add(ready[1])
        return ordered


class ApprovedOriginInline(admin.TabularInline):
    model = ApprovedOrigin
    form = ApprovedOriginForm
    formset = ApprovedOriginFormSet
    fields = ["origin", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    extra = 1

    def get_max_num(self, request: HttpRequest, obj: Instance | None = None, **kwargs: Any) -> int:
        return settings.CCPHOST_MAX_ORIGINS_PER_INSTANCE


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ["alias", "name", "kind", "login_popup", "ccp_width", "ccp_height", "origin_count"]
    list_filter = ["kind", "login_popup"]
    search_fields = ["alias", "name"]
    inlines = [ApprovedOriginInline]
    actions = ["sync_origins_with_amazon_connect"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        ("Identity", {"fields": ["alias", "name", "kind"]}),
        (
            "Amazon Connect",
            {
                "fields": ["ccp_url", "aws_region", "aws_instance_id"],
                "description": "Only for instances of kind Amazon Connect.",
            },
        ),
        (
            "Embedding options",
            {
                "fields": [
                    "login_popup",
                    "login_popup_auto_close",
                    "login_url",
                    "allow_framed_softphone",
                    "disable_ringtone",
                    "ringtone_url",
                    "ringtone_file",
                ]
            },
        ),
        ("CCP frame size", {"fields": ["ccp_width", "ccp_height"]}),
    ]

    @admin.display(description="approved origins")
    def origin_count(self, obj: Instance) -> int:
        return obj.origins.count()

    def get_readonly_fields(self, request: HttpRequest, obj: Instance | None = None) -> list[str]:
        # The alias is in every embedding URL: changing it would break them all.
        return ["alias"] if obj is not None else []

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if not isinstance(formset, ApprovedOriginFormSet):
            super().save_formset(request, form, formset, change)
            return
        actor = admin_actor(request)
        instance, plan = form.instance, formset.plan
        if plan.removed:
            revoke_origins(instance, plan.removed, actor)
        changed = [change_origin(instance, old, new, actor) for old, new in plan.changed]
        created = approve_origins(instance, plan.added, actor) if plan.added else []
        # What construct_change_message reads for the admin's own history.
        formset.new_objects = created
        formset.changed_objects = [(row, ["origin"]) for row in changed]
        formset.deleted_objects = plan.removed_rows

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except OriginChangeError as exc:
            # The form checks passed but the services, under their lock, refused (another
            # admin changed the origins meanwhile). The admin's atomic block has rolled back
            # the instance and every origin change of this request: nothing is half-saved.
            messages.error(request, f"Nothing was saved: {exc}")
            return HttpResponseRedirect(request.path)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], list[Any]]:
        """What deleting instances takes with them, for the confirmation page. Their contact
        center's rows go with them: the engine's logs (contacts, events, timers), read-only
        in the admin, do not ask for a delete permission of their own."""
        deleted, counts, _perms, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def delete_model(self, request: HttpRequest, obj: Instance) -> None:
        delete_instance(obj, admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        actor = admin_actor(request)
        for instance in queryset:
            delete_instance(instance, actor)

    @admin.action(description="Sync approved origins to Amazon Connect", permissions=["change"])
    def sync_origins_with_amazon_connect(self, request: HttpRequest, queryset: Any) -> None:
        from integrations.connect.client import OriginSyncError
        from integrations.connect.sync import format_plan, sync_instance_origins

        actor = admin_actor(request)
        for instance in queryset:
            try:
                plan, applied = sync_instance_origins(instance, dry_run=False, actor=actor)
            except OriginSyncError as exc:
                self.message_user(request, f"{instance.alias}: {exc}", messages.ERROR)
                continue
            verb = "synced" if applied else "already in sync"
            self.message_user(request, f"{instance.alias}: {verb}. {format_plan(plan)}", messages.SUCCESS)


@admin.register(OriginAudit)
class OriginAuditAdmin(admin.ModelAdmin):
    """The audit trail is written only by the origin services; here it can only be read."""

    list_display = [
        "created_at",
        "instance_alias",
        "action",
        "old_value",
        "new_value",
        "actor_name",
        "source",
        "remote_addr",
    ]
    list_filter = ["action", "source", "instance_alias"]
    search_fields = ["instance_alias", "old_value", "new_value", "actor_name", "remote_addr"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False
