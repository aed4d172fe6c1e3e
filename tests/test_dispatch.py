"""ccphost's dispatch loop (ccphost/ccp/dispatch.py): Channels' semantics (one handler at a
time, each source in order, StopConsumer ends the consumer, an error ends it with the error)
without a new task per message."""

import asyncio
import gc
from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from ccphost.ccp.dispatch import DirectDispatchMixin, dispatch_in_turn

# Channels' websocket_disconnect closes old database connections on a database thread.
pytestmark = pytest.mark.django_db(transaction=True)


class Recorder(DirectDispatchMixin, AsyncWebsocketConsumer):
    """Joins group "g"; records what its handlers see, and a "slow" group message keeps its
    handler busy until the test opens the gate."""

    log: list[str] = []
    gate: asyncio.Event

    async def connect(self) -> None:
        await self.channel_layer.group_add("g", self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard("g", self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.log.append(f"frame {text_data}")
        await self.send(text_data=f"echo {text_data}")

    async def group_note(self, message: dict[str, Any]) -> None:
        self.log.append(f"note {message['n']} start")
        if message.get("slow"):
            await self.gate.wait()
        self.log.append(f"note {message['n']} end")
        await self.send(text_data=f"note {message['n']}")


@pytest.fixture
def recorder(settings):
    # The embedded layer in both passes: the tests look into its queues (the scale-out
    # pass's consumers use the same loop with Redis throughout the suite).
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "ccphost.layers.SweepLimitedInMemoryChannelLayer"}}
    Recorder.log = []
    Recorder.gate = asyncio.Event()
    return Recorder


async def test_handlers_never_overlap_and_each_source_keeps_its_order(recorder):
    socket = WebsocketCommunicator(recorder.as_asgi(), "/")
    assert (await socket.connect())[0]
    layer = get_channel_layer()
    await layer.group_send("g", {"type": "group.note", "n": 1, "slow": True})
    await asyncio.sleep(0.05)
    await socket.send_to(text_data="a")  # arrives while note 1 is handled
    await layer.group_send("g", {"type": "group.note", "n": 2})
    await socket.send_to(text_data="b")
    await asyncio.sleep(0.05)
    assert recorder.log == ["note 1 start"]  # the others wait their turn
    recorder.gate.set()
    outputs = [await socket.receive_from(1) for _ in range(4)]
    assert outputs[0] == "note 1"
    assert [o for o in outputs if o.startswith("echo")] == ["echo a", "echo b"]
    assert "note 2" in outputs
    for n, entry in enumerate(recorder.log):  # each handler ended before the next started
        if entry.endswith("start"):
            assert recorder.log[n + 1] == entry.replace("start", "end")
    await socket.disconnect()


async def test_a_socket_makes_no_task_per_message(recorder):
    """Channels' loop made a task per message (and an asyncio.wait over both sources)."""
    loop = asyncio.get_running_loop()
    created = 0
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return factory(loop, coro, **kwargs) if factory else asyncio.Task(coro, loop=loop, **kwargs)

    socket = WebsocketCommunicator(recorder.as_asgi(), "/")
    assert (await socket.connect())[0]
    layer = get_channel_layer()
    loop.set_task_factory(counting)
    try:
        for n in range(50):
            await layer.group_send("g", {"type": "group.note", "n": n})
            assert await socket.receive_from(1) == f"note {n}"
    finally:
        loop.set_task_factory(factory)
    assert created < 10
    await socket.disconnect()


async def test_the_disconnect_ends_the_consumer_and_its_channel_reader(recorder):
    socket = WebsocketCommunicator(recorder.as_asgi(), "/")
    assert (await socket.connect())[0]
    layer = get_channel_layer()
    (channel,) = layer.groups["g"]
    assert channel in layer.channels  # its reader waits on its queue
    await socket.disconnect()
    assert "g" not in layer.groups
    assert channel not in layer.channels  # the reader was cancelled, the queue dropped


async def test_an_error_in_a_handler_ends_the_loop_with_it():
    async def frames() -> dict[str, Any]:
        return {"type": "boom"}

    async def never() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def dispatch(message: dict[str, Any]) -> None:
        raise ValueError(f"No handler for message type {message['type']}")

    with pytest.raises(ValueError, match="boom"):
        await asyncio.wait_for(dispatch_in_turn([frames, never], dispatch), 1)


async def test_of_two_readers_ending_at_once_the_first_sources_error_is_raised_and_both_retrieved(caplog):
    async def frames() -> dict[str, Any]:
        raise ConnectionResetError("the client went away")

    async def layer() -> dict[str, Any]:
        raise KeyError("the layer too")

    async def dispatch(message: dict[str, Any]) -> None:
        raise AssertionError("nothing to dispatch")

    with pytest.raises(ConnectionResetError):
        await dispatch_in_turn([frames, layer], dispatch)
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
