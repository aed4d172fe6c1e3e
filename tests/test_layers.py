"""The embedded channel layer keeps Channels' semantics while sweeping at most once a second."""

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.exceptions import ChannelFull

from ccphost import layers
from ccphost.layers import SweepLimitedInMemoryChannelLayer


async def test_group_send_reaches_every_member():
    layer = SweepLimitedInMemoryChannelLayer()
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("agent.1", channel)
    await layer.group_send("agent.1", {"type": "snapshot", "version": 1})
    for channel in channels:
        assert await asyncio.wait_for(layer.receive(channel), 1) == {"type": "snapshot", "version": 1}


async def test_capacity_is_enforced():
    layer = SweepLimitedInMemoryChannelLayer(capacity=2)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "a"})
    await layer.send(channel, {"type": "b"})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "c"})


async def test_group_send_drops_silently_past_capacity_like_channels():
    layer = SweepLimitedInMemoryChannelLayer(capacity=1)
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "first"})
    await layer.group_send("g", {"type": "second"})
    assert await layer.receive(channel) == {"type": "first"}


async def test_a_full_member_misses_the_group_message_and_the_others_get_it():
    layer = SweepLimitedInMemoryChannelLayer(capacity=1)
    full, free = await layer.new_channel(), await layer.new_channel()
    await layer.send(full, {"type": "waiting"})
    for channel in (full, free):
        await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "news"})
    assert await layer.receive(free) == {"type": "news"}
    assert await layer.receive(full) == {"type": "waiting"}
    with pytest.raises(asyncio.TimeoutError):  # and nothing after it
        await asyncio.wait_for(layer.receive(full), 0.05)


async def test_each_member_gets_its_own_copy_of_a_group_message():
    layer = SweepLimitedInMemoryChannelLayer()
    channels = [await layer.new_channel() for _ in range(2)]
    for channel in channels:
        await layer.group_add("g", channel)
    message = {"type": "snapshot", "frame": {"version": 1}}
    await layer.group_send("g", message)
    message["frame"]["version"] = 2  # the sender's later change reaches no one
    first = await layer.receive(channels[0])
    first["frame"]["version"] = 3  # nor does one receiver's
    assert await layer.receive(channels[1]) == {"type": "snapshot", "frame": {"version": 1}}


async def test_expired_messages_are_dropped_and_channel_leaves_groups():
    layer = SweepLimitedInMemoryChannelLayer(expiry=0.05, sweep_interval=0.05)
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", stale)
    await layer.send(stale, {"type": "old"})
    await asyncio.sleep(0.12)
    await layer.send(fresh, {"type": "new"})
    assert await layer.receive(fresh) == {"type": "new"}  # receive sweeps
    assert stale not in layer.groups.get("g", {})
    assert stale not in layer.channels


async def test_sweeps_at_most_once_per_interval(monkeypatch):
    calls = []
    monkeypatch.setattr(SweepLimitedInMemoryChannelLayer, "_expire_members", lambda self, *args: calls.append(1))
    layer = SweepLimitedInMemoryChannelLayer(sweep_interval=60)
    await layer.group_add("g", await layer.new_channel())
    for _ in range(100):
        await layer.group_send("g", {"type": "x"})
    assert len(calls) == 1


async def test_each_sweep_looks_at_a_batch_and_a_pass_reaches_everything():
    """A sweep looks at no more than sweep_batch channels and groups; the next ones go on
    where it stopped, so every expired message and membership still goes."""
    layer = SweepLimitedInMemoryChannelLayer(expiry=0.05, group_expiry=1, sweep_interval=0, sweep_batch=2)
    stale = [await layer.new_channel() for _ in range(5)]
    for n, channel in enumerate(stale):
        await layer.group_add(f"g{n}", channel)
        await layer.send(channel, {"type": "old"})
    old_member = await layer.new_channel()
    await layer.group_add("old", old_member)
    layer.groups["old"][old_member] -= 5  # joined long ago
    await asyncio.sleep(0.1)
    layer._clean_expired()
    assert len([c for c in stale if c in layer.channels]) >= 3  # two items at most, of eleven
    for _ in range(6):  # eleven items, two a sweep
        layer._clean_expired()
    assert [c for c in stale if c in layer.channels] == []
    assert all(not members for members in layer.groups.values())


async def test_group_expiry_still_applies():
    layer = SweepLimitedInMemoryChannelLayer(group_expiry=1, sweep_interval=0)
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    layer.groups["g"][channel] -= 5  # joined long ago
    await layer.group_send("g", {"type": "x"})
    assert channel not in layer.groups.get("g", {})


class GatedLayer(SweepLimitedInMemoryChannelLayer):
    """A layer whose group sends wait for the test to open the gate, and fail for group "bad"."""

    def __init__(self) -> None:
        super().__init__(capacity=1000)  # room for the tests' bursts, taken one receive at a time
        self.gate = asyncio.Event()

    async def group_send(self, group, message):
        await self.gate.wait()
        if group == "bad":
            raise ConnectionError("the layer is down")
        await super().group_send(group, message)


@pytest.fixture
def gated_layer(monkeypatch):
    layer = GatedLayer()
    monkeypatch.setattr(layers, "get_channel_layer", lambda: layer)
    return layer


async def test_group_send_soon_hands_over_without_waiting_and_keeps_order(gated_layer):
    channel = await gated_layer.new_channel()
    await gated_layer.group_add("agent.1", channel)

    def engine_thread():  # the engine's sync thread: the layer is closed, and it goes on
        for version in range(300):
            layers.group_send_soon("agent.1", {"type": "snapshot", "version": version})
        return "returned"

    assert await asyncio.wait_for(sync_to_async(engine_thread)(), 5) == "returned"
    gated_layer.gate.set()
    received = [(await asyncio.wait_for(gated_layer.receive(channel), 1))["version"] for _ in range(300)]
    assert received == list(range(300))


async def test_group_send_soon_logs_a_failed_send_and_sends_the_next(gated_layer, caplog):
    channel = await gated_layer.new_channel()
    await gated_layer.group_add("ok", channel)
    gated_layer.gate.set()

    def engine_thread():
        layers.group_send_soon("bad", {"type": "lost"})
        layers.group_send_soon("ok", {"type": "kept"})

    await sync_to_async(engine_thread)()
    assert await asyncio.wait_for(gated_layer.receive(channel), 1) == {"type": "kept"}
    assert "Could not send lost to group bad" in caplog.text


async def test_group_send_soon_waits_past_the_outbox_limit(gated_layer, monkeypatch):
    monkeypatch.setattr(layers, "OUTBOX_LIMIT", 2)
    channel = await gated_layer.new_channel()
    await gated_layer.group_add("agent.1", channel)
    handed_over = []

    def engine_thread():
        for version in range(2):
            layers.group_send_soon("agent.1", {"type": "snapshot", "version": version})
            handed_over.append(version)
        layers.group_send_soon("bad", {"type": "lost"})  # the third: it waits, and gets the error
        handed_over.append("bad")

    running = asyncio.ensure_future(sync_to_async(engine_thread)())
    await asyncio.sleep(0.2)
    assert handed_over == [0, 1] and not running.done()
    gated_layer.gate.set()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(running, 5)
    assert handed_over == [0, 1]
    assert [(await gated_layer.receive(channel))["version"] for _ in range(2)] == [0, 1]


def test_group_send_soon_outside_the_server_sends_at_once(gated_layer):
    gated_layer.gate.set()  # no event loop to hand over to (a management command)
    channel = async_to_sync(gated_layer.new_channel)()
    async_to_sync(gated_layer.group_add)("g", channel)
    layers.group_send_soon("g", {"type": "now"})
    assert async_to_sync(gated_layer.receive)(channel) == {"type": "now"}


async def test_sends_handed_over_while_the_loop_is_busy_go_with_one_wake_up(gated_layer):
    gated_layer.gate.set()
    channel = await gated_layer.new_channel()
    await gated_layer.group_add("agent.1", channel)
    outbox = layers.Outbox(asyncio.get_running_loop(), limit=1000)
    wake_ups = []
    wake_up = outbox._wake_up
    outbox._wake_up = lambda: (wake_ups.append(1), wake_up())  # type: ignore[method-assign]

    def engine_thread():
        for version in range(50):
            outbox.group_send(gated_layer, "agent.1", {"type": "snapshot", "version": version})

    thread = threading.Thread(target=engine_thread)
    thread.start()
    thread.join()  # the loop is held up meanwhile: this coroutine does not yield
    received = [(await asyncio.wait_for(gated_layer.receive(channel), 1))["version"] for _ in range(50)]
    assert (received, len(wake_ups)) == (list(range(50)), 1)
    outbox.group_send(gated_layer, "agent.1", {"type": "snapshot", "version": 50})  # idle again: a new wake-up
    assert (await asyncio.wait_for(gated_layer.receive(channel), 1))["version"] == 50
    assert len(wake_ups) == 2


async def test_a_channel_keeps_its_queue_between_receives():
    """No new asyncio.Queue per message (the stock layer builds one at every receive)."""
    layer = SweepLimitedInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "0"})
    queue = layer.channels[channel]
    for n in range(3):
        assert await layer.receive(channel) == {"type": str(n)}
        assert layer.channels[channel] is queue
        await layer.send(channel, {"type": str(n + 1)})


async def test_a_cancelled_receive_drops_its_empty_queue():
    """A consumer leaving cancels its receive: its channel goes with it."""
    layer = SweepLimitedInMemoryChannelLayer()
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    assert channel in layer.channels
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    assert channel not in layer.channels


async def test_a_cancelled_receive_leaves_messages_waiting_to_expire():
    layer = SweepLimitedInMemoryChannelLayer()
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    receiving.cancel()
    await layer.send(channel, {"type": "late"})  # before the cancellation reaches the receive
    with pytest.raises(asyncio.CancelledError):
        await receiving
    assert await layer.receive(channel) == {"type": "late"}


async def test_a_sweep_drops_an_empty_queue_no_one_receives_from():
    layer = SweepLimitedInMemoryChannelLayer(sweep_interval=0)
    left, waiting = await layer.new_channel(), await layer.new_channel()
    await layer.send(left, {"type": "a"})
    assert await layer.receive(left) == {"type": "a"}  # its queue stays, empty, no receiver
    receiving = asyncio.ensure_future(layer.receive(waiting))
    await asyncio.sleep(0)
    layer._clean_expired()
    assert left not in layer.channels
    assert waiting in layer.channels  # someone waits on it
    await layer.send(waiting, {"type": "b"})
    assert await asyncio.wait_for(receiving, 1) == {"type": "b"}


async def test_a_group_message_is_in_every_members_queue_when_group_send_returns():
    layer = SweepLimitedInMemoryChannelLayer()
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "x"})
    assert [layer.channels[channel].qsize() for channel in channels] == [1, 1, 1]


async def test_each_member_gets_its_own_dict_of_a_message_of_plain_values():
    layer = SweepLimitedInMemoryChannelLayer()
    channels = [await layer.new_channel() for _ in range(2)]
    for channel in channels:
        await layer.group_add("g", channel)
    message = {"type": "snapshot", "version": 1, "text": "{}"}
    await layer.group_send("g", message)
    message["version"] = 2
    first = await layer.receive(channels[0])
    first["version"] = 3
    assert await layer.receive(channels[1]) == {"type": "snapshot", "version": 1, "text": "{}"}
    assert layers.copied({"a": [1]}) == {"a": [1]}
    nested = {"a": [1]}
    assert layers.copied(nested)["a"] is not nested["a"]  # a mutable value: deep copied


async def test_a_burst_of_handed_over_sends_for_one_socket_stays_within_its_capacity(monkeypatch):
    """The outbox lets the consumers take each message before it sends the next, as the
    stock layer's send tasks did: 50 sends for a socket whose queue holds 5 all arrive."""
    layer = SweepLimitedInMemoryChannelLayer(capacity=5)
    monkeypatch.setattr(layers, "get_channel_layer", lambda: layer)
    channel = await layer.new_channel()
    await layer.group_add("agent.1", channel)
    received: list[int] = []

    async def consumer() -> None:
        while True:
            received.append((await layer.receive(channel))["version"])

    reading = asyncio.ensure_future(consumer())

    def engine_thread():
        for version in range(50):
            layers.group_send_soon("agent.1", {"type": "snapshot", "version": version})

    await sync_to_async(engine_thread)()
    for _ in range(200):
        if len(received) == 50:
            break
        await asyncio.sleep(0.01)
    reading.cancel()
    assert received == list(range(50))


def redis_url() -> str:
    from django.conf import settings

    url = getattr(settings, "REDIS_URL", None)
    if not url:
        pytest.skip("runs in the scale-out pass (make test-scaled: Redis)")
    return str(url)


def pipelined_layer(url: str, prefix: str) -> layers.PipelinedRedisPubSubChannelLayer:
    return layers.PipelinedRedisPubSubChannelLayer(hosts=[{"address": url, "socket_timeout": None}], prefix=prefix)


async def test_a_batch_of_group_messages_goes_to_redis_in_one_round_trip_in_order():
    sender, receiver = (pipelined_layer(redis_url(), "ccphost-test-batch") for _ in range(2))
    ada, bob = await receiver.new_channel(), await receiver.new_channel()
    await receiver.group_add("agent.1", ada)
    await receiver.group_add("agent.2", bob)
    try:
        shard = sender._get_layer()._shards[0]
        shard._ensure_redis()
        round_trips = []
        real_execute = type(shard._redis.pipeline()).execute

        async def counted(pipeline, *args, **kwargs):
            round_trips.append(len(pipeline.command_stack))
            return await real_execute(pipeline, *args, **kwargs)

        sends = [
            ("agent.1", {"type": "s", "n": 1}),
            ("agent.2", {"type": "s", "n": 2}),
            ("agent.1", {"type": "s", "n": 3}),
        ]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(type(shard._redis.pipeline()), "execute", counted)
            await layers.group_send_all(sender, sends)
        assert round_trips == [3]
        assert [(await asyncio.wait_for(receiver.receive(ada), 5))["n"] for _ in range(2)] == [1, 3]
        assert (await asyncio.wait_for(receiver.receive(bob), 5))["n"] == 2
    finally:
        await receiver.flush()
        await sender.flush()


async def test_a_batch_that_redis_refuses_is_logged_not_raised(caplog):
    redis_url()  # the scale-out pass: channels_redis' layer in use
    with socket_nobody_listens_on() as port:
        layer = pipelined_layer(f"redis://127.0.0.1:{port}/0", "ccphost-test-down")
        await layers.group_send_all(layer, [("agent.1", {"type": "s"})])
    assert "Could not send 1 group messages" in caplog.text


@contextlib.contextmanager
def socket_nobody_listens_on() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: a connection is refused
        yield sock.getsockname()[1]


async def test_without_a_batch_send_each_message_is_sent_in_turn():
    layer = SweepLimitedInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("agent.1", channel)
    await layers.group_send_all(layer, [("agent.1", {"type": "s", "n": n}) for n in range(3)])
    assert [(await layer.receive(channel))["n"] for _ in range(3)] == [0, 1, 2]
