"""The frame rate limit of the WebSockets (ccphost/ccp/ratelimit.py), on a clock the test holds.
The sockets themselves: tests/engine/test_socket_abuse.py."""

from ccphost.ccp.ratelimit import FrameRateLimit


def test_bucket_allows_a_burst_then_the_refill_rate():
    bucket = FrameRateLimit(capacity=3, rate=2, now=100.0)
    assert [bucket.allow(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow(100.5)  # one token back after half a second at 2 a second
    assert not bucket.allow(100.5)
    assert [bucket.allow(110.0) for _ in range(4)] == [True, True, True, False]  # never more than the burst
    assert bucket.allow(99.0) is False  # a clock that steps back refills nothing


def test_refusals_beyond_a_burst_exhaust_the_socket_unless_the_client_pauses():
    bucket = FrameRateLimit(capacity=2, rate=1, now=0.0)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, False, False]
    assert not bucket.exhausted  # refused as many as a burst: told, not yet closed
    assert bucket.allow(2.0)  # the bucket was full again: the refusals are forgiven
    assert bucket.refused == 0
    assert [bucket.allow(2.0) for _ in range(4)] == [True, False, False, False]
    assert bucket.exhausted


def test_a_client_at_twice_the_rate_is_eventually_closed():
    bucket = FrameRateLimit(capacity=4, rate=10, now=0.0)
    now = 0.0
    while not bucket.exhausted:
        bucket.allow(now)
        now += 0.05
        assert now < 10, "never closed"
    assert 0.4 < now < 2
