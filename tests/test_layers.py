"""The embedded channel layer keeps Channels' semantics while sweeping at most once a second."""

import asyncio

import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

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
    monkeypatch.setattr(InMemoryChannelLayer, "_clean_expired", lambda self: calls.append(1))
    layer = SweepLimitedInMemoryChannelLayer(sweep_interval=60)
    for _ in range(100):
        await layer.group_send("g", {"type": "x"})
    assert len(calls) == 1


async def test_group_expiry_still_applies():
    layer = SweepLimitedInMemoryChannelLayer(group_expiry=1, sweep_interval=0)
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    layer.groups["g"][channel] -= 5  # joined long ago
    await layer.group_send("g", {"type": "x"})
    assert channel not in layer.groups.get("g", {})
