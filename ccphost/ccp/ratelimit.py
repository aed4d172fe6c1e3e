"""Per-socket frame rate limit: a token bucket of ``CCPHOST_SOCKET_BURST`` frames refilled at
``CCPHOST_SOCKET_RATE`` frames a second. Every frame a client sends counts (heartbeats,
pings, binary and oversized frames too), before it is read. A refused frame is answered with
an error frame and not handled; a client that goes on after more than a whole burst was
refused since its bucket was last full is closed with 4429."""

import time
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from ccphost.ccp.dispatch import DirectDispatchMixin

CLOSE_TOO_MANY_FRAMES = 4429


class FrameRateLimit:
    def __init__(self, capacity: int, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = float(capacity)
        self.updated = now
        self.refused = 0  # since the bucket was last full

    @classmethod
    def from_settings(cls, now: float) -> "FrameRateLimit":
        return cls(settings.CCPHOST_SOCKET_BURST, settings.CCPHOST_SOCKET_RATE, now)

    def allow(self, now: float) -> bool:
        """Take a token for a frame received at ``now`` (monotonic seconds), if there is one."""
        self.tokens = min(float(self.capacity), self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= self.capacity:
            self.refused = 0  # the client paused long enough: its past is forgiven
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refused += 1
        return False

    @property
    def exhausted(self) -> bool:
        """The client keeps going: close its socket."""
        return self.refused > self.capacity

    def explanation(self) -> str:
        return (
            f"Too many frames: at most {self.capacity} at once and {self.rate:g} a second after that. "
            "This frame was not handled."
        )


class FrameLimitedConsumer(DirectDispatchMixin, AsyncJsonWebsocketConsumer):
    """A JSON consumer whose every incoming frame passes the socket's FrameRateLimit first
    (and whose messages are dispatched without a database thread hop: ccp.dispatch)."""

    frame_limit: FrameRateLimit | None = None
    closed_for_frames = False

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        if self.closed_for_frames:
            return  # closing: what the client still sends is dropped
        now = time.monotonic()
        if self.frame_limit is None:
            self.frame_limit = FrameRateLimit.from_settings(now)
        if self.frame_limit.allow(now):
            await super().websocket_receive(message)
            return
        await self.send_json(self.rate_limited_frame(message, self.frame_limit.explanation()))
        if self.frame_limit.exhausted:
            self.closed_for_frames = True
            await self.close(CLOSE_TOO_MANY_FRAMES)

    def rate_limited_frame(self, message: dict[str, Any], explanation: str) -> dict[str, Any]:
        """The error frame answering a refused frame, in this socket's error shape."""
        return {"type": "error", "message": explanation, "code": 429}
