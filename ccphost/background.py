"""Work each ASGI process does besides answering requests, started with its first request:
the engine's timers, webhook deliveries and the Kinesis forwarder. Each is exactly-once (or
at-least-once for deliveries) across processes through database locks. Also the two small
pieces every such loop is made of: run a step repeatedly, and start a task once per loop."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)
_tasks: dict[str, "asyncio.Task[None]"] = {}


async def repeat(seconds: float, step: Callable[[], Awaitable[None]], what: str) -> None:
    """Run ``step`` every ``seconds`` for ever; a failure is logged and the next run tries again."""
    while True:
        try:
            await step()
        except Exception:
            logger.exception("%s failed; trying again", what)
        await asyncio.sleep(seconds)


def start_once(name: str, make: Callable[[], Coroutine[Any, Any, None]]) -> "asyncio.Task[None]":
    """The task ``name`` of the running event loop, started with ``make()`` unless it runs."""
    loop = asyncio.get_running_loop()
    task = _tasks.get(name)
    if task is None or task.done() or task.get_loop() is not loop:
        task = _tasks[name] = loop.create_task(make())
    return task


def running_task(name: str) -> "asyncio.Task[None] | None":
    return _tasks.get(name)


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
