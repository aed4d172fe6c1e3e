from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator

from integrations.webhooks.delivery import attempt_delivery
from integrations.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services import queue_test_event, retry_now


class EventTypesField(forms.CharField):
    """Event types typed as a comma-separated list, stored as a JSON list."""

    def prepare_value(self, value: object) -> object:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: object) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")
    event_filter = EventTypesField(
        required=False, help_text="Event types to send, comma separated; empty for every event."
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["instance", "url", "secret", "event_filter", "enabled", "max_attempts", "timeout"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "instance", "enabled", "events", "max_attempts", "timeout"]
    list_filter = ["enabled", "instance"]
    search_fields = ["url"]
    actions = ["send_test_event"]

    @admin.display(description="events")
    def events(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_filter) or "all"

    @admin.action(description="Send a test event now")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            delivery = queue_test_event(endpoint)
            if attempt_delivery(delivery):
                self.message_user(request, f"{endpoint.url} took the test event (HTTP {delivery.last_status_code}).")
            else:
                self.message_user(request, f"{endpoint.url}: {delivery.last_error}", messages.WARNING)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = readonly_fields = ("number", "created_at", "status_code", "error", "duration_ms")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event_type", "endpoint", "status", "attempts", "last_status_code", "error"]
    list_filter = ["status", "event_type", "endpoint__instance"]
    search_fields = ["event_id", "event_type", "endpoint__url"]
    inlines = [WebhookAttemptInline]
    actions = ["retry_deliveries_now"]

    @admin.display(description="last error")
    def error(self, delivery: WebhookDelivery) -> str:
        return Truncator(delivery.last_error).chars(80)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # a log: viewed, never edited

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_deliveries_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = retry_now(queryset)
        self.message_user(request, f"{count} deliveries will be attempted within a second.")
