"""Faults and abuse on the WebSockets: the per-socket frame rate limit (ccphost/ccp/ratelimit.py),
arbitrary frames thrown at the CCP socket, and a socket left idle.

Heartbeats count as frames: each one writes to the database (the socket's row), so a flood of
them is as much abuse as a flood of requests. The CCP page sends one every 20 s."""

import asyncio
import contextlib
import json
import os
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ccphost.asgi import application
from ccphost.ccp.consumers import MAX_FRAME_BYTES
from ccphost.ccp.event_stream import make_events_token
from ccphost.ccp.ratelimit import CLOSE_TOO_MANY_FRAMES
from ccphost.engine import services
from ccphost.engine.api import METHODS
from ccphost.engine.models import Agent
from tests.engine.conftest import fingerprint, state
from tests.engine.test_consumer import HEADERS, next_frame, open_socket, session_cookie, signed_in_agent

# How long the idle socket waits: longer than redis-py's default 5 s socket timeout, which
# would drop an idle channels_redis consumer (shared/docs/design.md). Settable for a longer soak.
IDLE_SECONDS = float(os.environ.get("CCPHOST_TEST_IDLE_SECONDS", "6"))
RATE_LIMITED = "TooManyRequestsException"

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_timer_loop(settings):
    settings.CCPHOST_TIMER_LOOP = False


@pytest.fixture
def limit(settings):
    """Set this test's limit: a burst, then a rate (frames a second; fractions allowed here)."""

    def set_limit(burst: int, rate: float) -> None:
        settings.CCPHOST_SOCKET_BURST, settings.CCPHOST_SOCKET_RATE = burst, rate

    return set_limit


@pytest.fixture
def ada_session(transactional_db, ada) -> str:
    return session_cookie(Agent.objects.select_related("user").get(pk=ada.pk).user)


async def ada_socket(session: str) -> WebsocketCommunicator:
    socket = await open_socket(session=session)
    await signed_in_agent(socket)
    return socket


async def replies_until_closed(socket: WebsocketCommunicator) -> tuple[list[dict[str, Any]], int]:
    frames = []
    while True:
        output = await socket.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return frames, output["code"]
        frames.append(json.loads(output["text"]))


# The limit on the sockets.


async def test_a_heartbeat_burst_gets_429_errors_then_close_4429(instance, ada_session, limit):
    limit(5, 0.001)
    socket = await ada_socket(ada_session)
    for _ in range(5 + 6 + 3):
        await socket.send_json_to({"type": "heartbeat"})
    frames, code = await replies_until_closed(socket)
    assert code == CLOSE_TOO_MANY_FRAMES
    assert frames[:5] == [{"type": "heartbeat"}] * 5
    refusals = frames[5:]
    assert len(refusals) == 6, "a whole burst refused with errors, the next refusal closes"
    for refusal in refusals:
        assert refusal["requestId"] is None
        assert refusal["err"]["type"] == RATE_LIMITED
        assert refusal["err"]["statusCode"] == 429
        assert "Too many frames" in refusal["err"]["message"]
    await socket.send_json_to({"type": "heartbeat"})
    assert await socket.receive_nothing(timeout=0.2), "frames after the close are dropped"
    await socket.disconnect()


async def test_a_refused_request_is_not_handled_and_names_its_request(instance, ada, ada_session, limit):
    limit(2, 0.001)
    socket = await ada_socket(ada_session)
    before = await database_sync_to_async(fingerprint)(instance)
    await socket.send_json_to({"type": "heartbeat"})
    await socket.send_to(bytes_data=b"\x00")  # binary frames count too
    await socket.send_json_to({"requestId": "lunch", "method": "putAgentState", "params": {"state": {"name": "Lunch"}}})
    assert await next_frame(socket) == {"type": "heartbeat"}
    assert (await next_frame(socket))["err"]["type"] == "InvalidFrame"
    refused = await next_frame(socket)
    assert refused["requestId"] == "lunch"
    assert (refused["err"]["type"], refused["err"]["statusCode"]) == (RATE_LIMITED, 429)
    assert await socket.receive_nothing(timeout=0.5), "no snapshot: nothing changed, and the socket stays open"
    assert await database_sync_to_async(fingerprint)(instance) == before
    await socket.disconnect()


async def test_a_client_within_the_rate_is_never_limited(instance, ada_session, limit):
    limit(3, 20)
    socket = await ada_socket(ada_session)
    started = time.monotonic()
    for i in range(15):  # 10 frames a second, for longer than the burst lasts
        await socket.send_json_to({"requestId": i, "method": "getEndpoints", "params": {}})
        assert "data" in await next_frame(socket, request_id=i)
        await asyncio.sleep(max(0.0, started + (i + 1) * 0.1 - time.monotonic()))
    await socket.disconnect()


async def test_the_events_socket_limits_pings(instance, ada, limit):
    limit(3, 0.001)
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    socket = WebsocketCommunicator(application, f"/ws/events/acme/?token={make_events_token(ada)}", headers=headers)
    assert (await socket.connect())[0]
    assert (await socket.receive_json_from())["type"] == "subscribed"
    for _ in range(3 + 4):
        await socket.send_json_to({"type": "ping"})
    frames, code = await replies_until_closed(socket)
    assert code == CLOSE_TOO_MANY_FRAMES
    frames = [f for f in frames if f["type"] != "event"]  # ada's sign-in, replayed
    assert [f["type"] for f in frames] == ["pong"] * 3 + ["error"] * 4
    assert all(f["code"] == 429 and "Too many frames" in f["message"] for f in frames[3:])
    await socket.disconnect()


async def test_the_supervisor_socket_answers_any_frame_and_limits_them(instance, admin_user, limit):
    limit(3, 0.001)
    cookie = f"sessionid={await database_sync_to_async(session_cookie)(admin_user)}".encode()
    socket = WebsocketCommunicator(application, "/ws/supervisor/acme/", headers=[*HEADERS, (b"cookie", cookie)])
    assert (await socket.connect())[0]
    assert (await socket.receive_json_from())["type"] == "board"
    await socket.send_to(bytes_data=b"\xff")
    await socket.send_to(text_data="{not json")
    await socket.send_json_to({"type": "ping"})
    for _ in range(4):
        await socket.send_to(text_data="x")
    frames, code = await replies_until_closed(socket)
    assert code == CLOSE_TOO_MANY_FRAMES
    assert [f.get("code") for f in frames] == [None] * 3 + [429] * 4
    assert all(f["type"] == "error" for f in frames)
    await socket.disconnect()


# Arbitrary frames at the CCP socket.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
not_text = json_values.filter(lambda v: not isinstance(v, str))
not_object = json_values.filter(lambda v: not isinstance(v, dict))
# Known fields of the API methods with values of the wrong type, or ids of nothing.
wrong_params = st.fixed_dictionaries(
    {},
    optional={
        "state": not_object | st.fixed_dictionaries({"name": not_text}),
        "configuration": not_object,
        "endpoint": not_object | st.fixed_dictionaries({"phoneNumber": not_text}),
        "contactId": not_text | st.uuids().map(str),
        "connectionId": not_text | st.uuids().map(str),
        "digits": not_text,
        "queueARNs": not_object,
        "nextToken": st.text(max_size=30) | not_text,
        "maxResults": st.integers(1001) | st.integers(max_value=0) | not_text,
        "enqueueNextState": json_values.filter(lambda v: not isinstance(v, bool)),
    },
)
request_ids = json_values | st.text(max_size=40) | st.integers()


def request(method: Any, params: Any, request_id: Any) -> str:
    return json.dumps({"requestId": request_id, "method": method, "params": params})


text_frames = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.builds(request, st.sampled_from(sorted(METHODS)), wrong_params | not_object, request_ids),
    st.builds(request, st.text(max_size=30) | not_text, json_values, request_ids),
    st.builds(lambda d: json.dumps({"type": d}), json_values),
    st.integers(MAX_FRAME_BYTES + 1, 3 * MAX_FRAME_BYTES).map(lambda n: request("getEndpoints", {"pad": "x" * n}, 1)),
    st.integers(2, MAX_FRAME_BYTES // 2).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(2, MAX_FRAME_BYTES // 6).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.just('{"type": "heartbeat"}'),
    st.just(request("getEndpoints", {}, "ok")),
)
frames = st.lists(
    st.one_of(text_frames.map(lambda t: {"text": t}), st.binary(max_size=64).map(lambda b: {"bytes": b})),
    min_size=1,
    max_size=6,
)


def is_answer(frame: Any) -> bool:
    if frame == {"type": "heartbeat"}:
        return True
    if not isinstance(frame, dict) or set(frame) not in ({"requestId", "data"}, {"requestId", "err"}):
        return False
    if "data" in frame:
        return True
    return isinstance(frame["err"].get("type"), str) and 400 <= frame["err"]["statusCode"] < 500


class ReusedSocket:
    """One signed-in CCP socket for many examples (opening one costs more than an example);
    a fresh one after an example that failed, so that shrinking never sees a broken socket."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.socket: WebsocketCommunicator | None = None

    async def get(self) -> WebsocketCommunicator:
        if self.socket is None:
            self.socket = await ada_socket(self.session)
        return self.socket

    async def discard(self) -> None:
        socket, self.socket = self.socket, None
        if socket is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await socket.disconnect()


@pytest.fixture
async def reused_socket(ada_session, limit):
    limit(100_000, 100_000)  # not under test here; a fresh socket per example would stay under 40
    holder = ReusedSocket(ada_session)
    yield holder
    await holder.discard()


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(sent=frames)
@example(sent=[{"text": "[" * 8000 + "]" * 8000}, {"text": ""}, {"bytes": b""}])  # too deep for json; empty
async def test_arbitrary_frames_get_answers_and_change_nothing(instance, reused_socket, sent):
    socket = await reused_socket.get()
    try:
        before = await database_sync_to_async(fingerprint)(instance)
        for frame in sent:
            await socket.send_input({"type": "websocket.receive", **frame})  # send_to refuses empty frames
            output = await socket.receive_output(timeout=5)
            assert output["type"] == "websocket.send", f"closed with {output.get('code')} after {frame!r:.200}"
            assert is_answer(json.loads(output["text"])), output["text"][:300]
        assert await socket.receive_nothing(timeout=0.02)
        assert await database_sync_to_async(fingerprint)(instance) == before
    except BaseException:
        await reused_socket.discard()
        raise


# An idle socket.


async def test_an_idle_socket_stays_open_and_gets_pushes(instance, ada, ada_session, limit):
    limit(4, 4 / IDLE_SECONDS)  # the bucket refills exactly over the idle period
    socket = await ada_socket(ada_session)
    for _ in range(4):
        await socket.send_json_to({"type": "heartbeat"})
        assert await next_frame(socket) == {"type": "heartbeat"}
    assert await socket.receive_nothing(timeout=IDLE_SECONDS), "an idle socket gets nothing, not even a close"
    await database_sync_to_async(services.put_agent_state)(ada, await database_sync_to_async(state)(instance, "Break"))
    pushed = await next_frame(socket, "snapshot")
    assert pushed["snapshot"]["state"]["name"] == "Break"
    for _ in range(4):  # a whole burst again after the pause
        await socket.send_json_to({"type": "heartbeat"})
        assert await next_frame(socket) == {"type": "heartbeat"}
    await socket.disconnect()
