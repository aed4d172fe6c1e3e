from typing import Any

from django.apps import AppConfig


class CcpConfig(AppConfig):
    name = "ccphost.ccp"
    label = "ccp"

    def ready(self) -> None:
        from ccphost.ccp.event_stream import publish_event
        from ccphost.engine.signals import event_committed

        def relay(sender: Any, event: Any, **kwargs: Any) -> None:
            publish_event(event)

        event_committed.connect(relay, weak=False, dispatch_uid="ccphost.ccp.relay")
