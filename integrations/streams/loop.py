"""Forward event records to Kinesis from each ASGI process, once a second."""

import asyncio
import logging

from channels.db import database_sync_to_async

from integrations.streams.forwarder import forward_all

logger = logging.getLogger(__name__)
TICK_SECONDS = 1.0
_task: "asyncio.Task[None] | None" = None


async def forward_loop() -> None:
    while True:
        try:
            await database_sync_to_async(forward_all)()
        except Exception:
            logger.exception("Forwarding events to Kinesis failed; trying again")
        await asyncio.sleep(TICK_SECONDS)


def start_forwarder() -> None:
    global _task
    loop = asyncio.get_running_loop()
    if _task is None or _task.done() or _task.get_loop() is not loop:
        _task = loop.create_task(forward_loop())
