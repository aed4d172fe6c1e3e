"""The embedded (single-process) channel layer.

Channels' stock ``InMemoryChannelLayer`` walks every channel and every group on each
``receive`` and ``group_send`` to expire old messages, so its cost grows with the number of
open sockets (measured in ../shared/docs/design.md: 10,000 sockets get 14 deliveries/s).
This layer keeps the same semantics (expiry, group expiry, capacity) but sweeps at most
once per ``sweep_interval`` seconds, which is all expiry needs: an expired message is at
most ``sweep_interval`` late to be dropped.
"""

import asyncio
import time
from typing import Any

from asgiref.sync import SyncToAsync
from channels.layers import InMemoryChannelLayer, get_channel_layer


class SweepLimitedInMemoryChannelLayer(InMemoryChannelLayer):
    def __init__(self, sweep_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweep_interval = sweep_interval
        self._next_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        super()._clean_expired()

    async def flush(self) -> None:
        await super().flush()
        self._next_sweep = 0.0


def reaches_channel_layer() -> bool:
    """Whether a ``group_send`` made from this (synchronous) thread reaches the sockets.

    Never from a thread running an event loop (``async_to_sync`` cannot wait there). With
    the embedded layer, which lives in the server's event loop, only code the server runs
    (``sync_to_async`` threads) can reach it; a management command or another thread
    cannot, and the sockets' database watchers deliver their changes instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return False
    layer = get_channel_layer()
    if layer is None:
        return False
    if isinstance(layer, InMemoryChannelLayer):
        return getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None
    return True
