"""What a serving process does once, when its server starts it and when it stops it."""

import logging
from typing import Any

from ccphost.affinity import REGISTRY_NAME, pin_serving_process
from ccphost.engine.process import start_serving_engine, stop_engine_process

logger = logging.getLogger(__name__)


class ServerLifespanMiddleware:
    """ASGI middleware answering the lifespan protocol, which a server (uvicorn, and
    gunicorn's uvicorn workers) speaks once per process before serving it: at startup an
    embedded server starts its engine process (ccphost.engine.process), and the process
    takes its CPU (pin_serving_process); at shutdown the engine process stops. Other scopes
    go to the application."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "lifespan":
            return await self.application(scope, receive, send)
        from django.conf import settings

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # First the engine process (started unpinned: it has a core of its own) ...
                await start_serving_engine()
                try:
                    pin_serving_process(settings.CCPHOST_CPU_AFFINITY, settings.VAR_DIR / REGISTRY_NAME)
                except OSError:
                    # Not fatal: the process serves as well, only unpinned.
                    logger.exception("Could not pin this process to a CPU")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await stop_engine_process()
                await send({"type": "lifespan.shutdown.complete"})
                return
