"""Forward event records to Kinesis from each ASGI process, once a second."""

from channels.db import database_sync_to_async

from ccphost.background import repeat, start_once
from integrations.streams.forwarder import forward_all

TICK_SECONDS = 1.0


async def forward_now() -> None:
    await database_sync_to_async(forward_all)()


def start_forwarder() -> None:
    start_once("kinesis", lambda: repeat(TICK_SECONDS, forward_now, "Forwarding events to Kinesis"))
