"""The bench server's settings: ccphost's own, with the channel layer the run compares
(``BENCH_LAYER``): ``stock`` is Channels' InMemoryChannelLayer in place of the embedded
default, ``redis-core`` channels_redis' RedisChannelLayer in place of its pub/sub layer."""

import os

from ccphost.settings import *  # noqa: F403
from ccphost.settings import REDIS_URL

LAYER = os.environ.get("BENCH_LAYER", "default")
if LAYER == "stock":
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 100, "expiry": 60}}
    }
elif LAYER == "redis-core":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}], "prefix": "ccphost-bench"},
        }
    }
elif LAYER != "default":
    raise ValueError(f"BENCH_LAYER: unknown layer {LAYER!r}")
