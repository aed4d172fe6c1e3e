from typing import Any

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "integrations.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from ccphost.engine import configuration
        from ccphost.engine.signals import event_recorded
        from integrations.webhooks.models import WebhookEndpoint
        from integrations.webhooks.services import enqueue_event

        def queue_webhooks(sender: Any, event: Any, instance: Any, settings: Any = None, **kwargs: Any) -> None:
            # In the event's own transaction: the deliveries commit or roll back with it.
            event_type = f"{event.stream}.{event.event_type}"
            enqueue_event(instance, event_type, event.payload, event_id=event.event_id, settings=settings)

        event_recorded.connect(queue_webhooks, weak=False, dispatch_uid="integrations.webhooks.queue")
        configuration.watch(WebhookEndpoint)  # endpoints are cached per configuration stamp
