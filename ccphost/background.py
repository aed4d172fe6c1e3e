"""Work each ASGI process does besides answering requests, started with its first request:
the engine's timers, webhook deliveries and the Kinesis forwarder. Each is exactly-once (or
at-least-once for deliveries) across processes through database locks."""

from typing import Any

from django.conf import settings


def start_background_work() -> None:
    from ccphost.engine.timers import start_timer_loop

    start_timer_loop()
    if settings.CCPHOST_BACKGROUND_DELIVERY:
        from integrations.streams.loop import start_forwarder
        from integrations.webhooks.worker import start_webhook_worker

        start_forwarder()
        start_webhook_worker()


class BackgroundWorkMiddleware:
    """ASGI middleware: start the process's background work with its first request."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket"):
            start_background_work()
        return await self.application(scope, receive, send)
