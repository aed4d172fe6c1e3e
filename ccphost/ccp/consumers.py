"""The CCP socket: one per CCP tab, for a signed-in agent of the instance."""

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ccphost.instances.models import Instance

MAX_FRAME_BYTES = 16 * 1024

# Close codes in the 4000 range are ours; the CCP page reads them.
CLOSE_UNKNOWN_INSTANCE = 4404
CLOSE_NOT_SIGNED_IN = 4401


@database_sync_to_async
def instance_exists(alias: str) -> bool:
    return Instance.objects.filter(alias=alias).exists()


def error(request_id: Any, type_: str, message: str, status: int) -> dict[str, Any]:
    return {"requestId": request_id, "err": {"type": type_, "message": message, "statusCode": status}}


class CcpConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.alias: str = self.scope["url_route"]["kwargs"]["alias"]
        await self.accept()
        if not await instance_exists(self.alias):
            await self.send_json({"type": "error", "message": f"No instance {self.alias!r}."})
            await self.close(CLOSE_UNKNOWN_INSTANCE)
            return
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.send_json({"type": "auth_fail", "message": "Sign in to use the CCP."})
            await self.close(CLOSE_NOT_SIGNED_IN)
            return
        await self.send_json({"type": "hello", "username": user.get_username(), "instance": self.alias})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if text_data is None:
            await self.send_json(error(None, "InvalidFrame", "Frames are JSON text, not binary.", 400))
            return
        if len(text_data.encode()) > MAX_FRAME_BYTES:
            await self.send_json(error(None, "FrameTooLarge", f"A frame is at most {MAX_FRAME_BYTES} bytes.", 413))
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self.send_json(error(None, "InvalidFrame", "The frame is not valid JSON.", 400))
            return
        await self.receive_frame(frame)

    async def receive_frame(self, frame: Any) -> None:
        if not isinstance(frame, dict):
            await self.send_json(error(None, "InvalidFrame", "A frame is a JSON object.", 400))
            return
        if frame.get("type") == "heartbeat":
            await self.send_json({"type": "heartbeat"})
            return
        request_id = frame.get("requestId")
        method = frame.get("method")
        if not isinstance(method, str):
            await self.send_json(error(request_id, "InvalidFrame", "A request needs a 'method' string.", 400))
            return
        await self.send_json(error(request_id, "UnknownMethod", f"Unknown method {method!r}.", 400))
