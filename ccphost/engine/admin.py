"""Admin for the contact center: settings, agent states, queues, routing profiles, quick
connects and agents are edited here; contacts, timers and the event log are read here.
Actions call the engine's services (simulate a call, a callback, a hang-up; set a state)."""

from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ccphost.engine import network, seed, services
from ccphost.engine.core import EngineError
from ccphost.engine.models import (
    Agent,
    AgentState,
    Contact,
    EngineEvent,
    InstanceSettings,
    Queue,
    QuickConnect,
    RoutingProfile,
    RoutingProfileQueue,
    Timer,
)

SIMULATED_CALLER = "+15555550123"


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class ConfigurationAdmin(admin.ModelAdmin):
    """Saving configuration pushes new configurations to the instance's agents."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        self.changed_instance = obj.instance

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        services.configuration_changed(self.changed_instance)


def report(request: HttpRequest, done: int, failures: list[str], what: str) -> None:
    if done:
        messages.success(request, f"{what}: {done}.")
    for failure in failures:
        messages.error(request, failure)


@admin.register(InstanceSettings)
class InstanceSettingsAdmin(admin.ModelAdmin):
    list_display = ["instance", "ring_timeout_seconds", "after_call_work_seconds", "callback_retries"]
    readonly_fields = ["simulator_token", "last_event_sequence"]
    actions = ["rotate_token"]

    def save_model(self, request: HttpRequest, obj: InstanceSettings, form: Any, change: bool) -> None:
        # Only what the form changed: the engine moves last_event_sequence meanwhile.
        if change:
            obj.save(update_fields=form.changed_data)
        else:
            obj.save()

    @admin.action(description="Rotate the simulator API token")
    def rotate_token(self, request: HttpRequest, queryset: QuerySet[InstanceSettings]) -> None:
        from ccphost.engine.models import new_simulator_token

        for settings in queryset:
            settings.simulator_token = new_simulator_token()
            settings.save(update_fields=["simulator_token"])
        messages.success(request, f"New simulator tokens for {queryset.count()} instance(s).")


@admin.register(AgentState)
class AgentStateAdmin(ConfigurationAdmin):
    list_display = ["name", "type", "instance", "enabled", "position"]
    list_filter = ["instance", "type", "enabled"]
    list_editable = ["enabled", "position"]


@admin.register(Queue)
class QueueAdmin(ConfigurationAdmin):
    list_display = ["name", "instance", "waiting"]
    list_filter = ["instance"]
    readonly_fields = ["queue_id"]
    actions = ["simulate_inbound_call", "simulate_callback"]

    @admin.display(description="waiting contacts")
    def waiting(self, queue: Queue) -> int:
        return queue.contacts.filter(waiting_since__isnull=False).count()

    def simulate(self, request: HttpRequest, queryset: QuerySet[Queue], callback: bool) -> None:
        done, failures = 0, []
        for queue in queryset.select_related("instance"):
            try:
                start = network.start_queue_callback if callback else network.start_inbound_contact
                start(queue.instance, queue, SIMULATED_CALLER, {"source": "admin"})
                done += 1
            except EngineError as refused:
                failures.append(f"{queue}: {refused.message}")
        report(request, done, failures, "Simulated callbacks" if callback else "Simulated calls")

    @admin.action(description=f"Simulate an inbound call to this queue (from {SIMULATED_CALLER})")
    def simulate_inbound_call(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self.simulate(request, queryset, callback=False)

    @admin.action(description=f"Simulate a queue callback request (to {SIMULATED_CALLER})")
    def simulate_callback(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self.simulate(request, queryset, callback=True)


class RoutingProfileQueueInline(admin.TabularInline):
    model = RoutingProfileQueue
    extra = 1


@admin.register(RoutingProfile)
class RoutingProfileAdmin(ConfigurationAdmin):
    list_display = ["name", "instance", "voice_concurrency", "default_outbound_queue"]
    list_filter = ["instance"]
    inlines = [RoutingProfileQueueInline]


@admin.register(QuickConnect)
class QuickConnectAdmin(ConfigurationAdmin):
    list_display = ["name", "type", "phone_number", "queue", "agent", "instance"]
    list_filter = ["instance", "type"]
    filter_horizontal = ["available_in"]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["user", "instance", "routing_profile", "state_name", "status", "next_status", "snapshot_version"]
    list_filter = ["instance", "state_type"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    live_fields = [
        "agent_id",
        "status",
        "status_since",
        "state_type",
        "state_name",
        "state_since",
        "error_state",
        "next_status",
        "idle_since",
        "snapshot_version",
    ]
    readonly_fields = live_fields
    actions = ["make_available", "make_offline"]

    exclude = ["last_event_snapshot"]

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        if change:
            # Only what the form changed: the agent's live state moves meanwhile.
            obj.save(update_fields=form.changed_data)
            services.configuration_changed(obj.instance, [obj])
            return
        state = seed.offline_state(obj.instance)
        now = timezone.now()
        obj.status, obj.status_since, obj.state_since = state, now, now
        obj.state_type, obj.state_name = state.type, state.name
        super().save_model(request, obj, form, change)

    def set_state(self, request: HttpRequest, queryset: QuerySet[Agent], state_type: str) -> None:
        done, failures = 0, []
        for agent in queryset.select_related("instance", "user"):
            state = AgentState.objects.filter(instance=agent.instance, type=state_type, enabled=True).first()
            try:
                if state is None:
                    raise EngineError("ResourceNotFoundException", f"No {state_type} state in {agent.instance}.")
                services.put_agent_state(agent, state)
                done += 1
            except EngineError as refused:
                failures.append(f"{agent}: {refused.message}")
        report(request, done, failures, "Agents changed")

    @admin.action(description="Set Available (routable)")
    def make_available(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        self.set_state(request, queryset, AgentState.Type.ROUTABLE)

    @admin.action(description="Set Offline")
    def make_offline(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        self.set_state(request, queryset, AgentState.Type.OFFLINE)


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = [
        "contact_id",
        "type",
        "initiation_method",
        "state",
        "queue",
        "agent",
        "customer_number",
        "created_at",
    ]
    list_filter = ["instance", "state", "type", "initiation_method"]
    search_fields = ["contact_id", "customer_number"]
    actions = ["customer_hangs_up"]

    @admin.action(description="Simulate: the customer hangs up")
    def customer_hangs_up(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        done, failures = 0, []
        for contact in queryset.select_related("instance"):
            try:
                network.customer_hangs_up(contact.instance, str(contact.contact_id))
                done += 1
            except EngineError as refused:
                failures.append(f"{contact.contact_id}: {refused.message}")
        report(request, done, failures, "Customers hung up")


@admin.register(Timer)
class TimerAdmin(ReadOnlyAdmin):
    list_display = ["kind", "instance", "due_at", "fired_at", "outcome"]
    list_filter = ["instance", "kind", "fired_at"]


@admin.register(EngineEvent)
class EngineEventAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "instance", "stream", "event_type", "agent", "contact", "created_at"]
    list_filter = ["instance", "stream", "event_type"]
    search_fields = ["event_id", "event_type"]
    ordering = ["-instance", "-sequence"]
