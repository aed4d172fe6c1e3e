"""The CCP socket against the real ASGI application (origin check, sessions, channel layer)."""

import asyncio
import gc
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.test import Client
from django.utils import timezone

from ccphost.asgi import application
from ccphost.ccp import consumers
from ccphost.engine import network, seed, services
from ccphost.engine.models import Agent, Queue
from ccphost.engine.snapshots import snapshot_message
from tests.engine.conftest import state

pytestmark = [pytest.mark.django_db(transaction=True)]

HEADERS = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


@pytest.fixture(autouse=True)
def _no_timer_loop(settings):
    settings.CCPHOST_TIMER_LOOP = False


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def open_socket(user: Any = None, alias: str = "acme", session: str | None = None) -> WebsocketCommunicator:
    headers = list(HEADERS)
    if user is not None or session is not None:
        session = session or await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"sessionid={session}".encode()))
    socket = WebsocketCommunicator(application, f"/ws/ccp/{alias}/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


async def next_frame(socket: WebsocketCommunicator, kind: str | None = None, request_id: Any = None) -> Any:
    """The next frame of a kind (snapshot, hello...) or answering a request id, skipping others."""
    for _ in range(20):
        frame = await socket.receive_json_from(timeout=3)
        if kind is not None and frame.get("type") == kind:
            return frame
        if request_id is not None and frame.get("requestId") == request_id:
            return frame
        if kind is None and request_id is None:
            return frame
    raise AssertionError("no such frame")


async def signed_in_agent(socket: WebsocketCommunicator) -> dict[str, Any]:
    assert (await next_frame(socket))["type"] == "hello"
    return await next_frame(socket, "snapshot")


async def request(socket: WebsocketCommunicator, method: str, params: Any, request_id: str = "r1") -> Any:
    await socket.send_json_to({"requestId": request_id, "method": method, "params": params})
    return await next_frame(socket, request_id=request_id)


@database_sync_to_async
def setup_center(instance: Any, django_user_model: Any, *names: str) -> list[Agent]:
    seed.seed_instance_defaults(instance)
    agents = []
    for name in names:
        agent = seed.make_agent(instance, django_user_model.objects.create_user(name))
        services.put_agent_state(agent, state(instance, "Available"))
        agents.append(Agent.objects.select_related("user", "instance").get(pk=agent.pk))
    return agents


@database_sync_to_async
def inbound_call(instance: Any) -> str:
    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    return str(network.start_inbound_contact(instance, queue, "+15555550123").contact_id)


async def test_snapshots_reach_the_socket_while_the_database_thread_is_busy(instance, django_user_model):
    """Handling a message takes no turn on the process's database thread (ccp.dispatch):
    with SQLite that thread runs every engine change, and frames would wait behind them."""
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    snapshot = await signed_in_agent(socket)
    release = threading.Event()
    busy = asyncio.ensure_future(sync_to_async(release.wait)())  # holds the one thread-sensitive thread
    try:
        frame = dict(snapshot, version=snapshot["version"] + 100)
        await get_channel_layer().group_send(f"agent.{ada.pk}", snapshot_message(frame))
        assert (await next_frame(socket, "snapshot"))["version"] == frame["version"]
        assert not busy.done()
    finally:
        release.set()
        await busy
    await socket.disconnect()


async def test_not_signed_in_gets_auth_fail(instance):
    socket = await open_socket()
    assert (await next_frame(socket))["type"] == "auth_fail"
    assert (await socket.receive_output(timeout=2))["code"] == 4401


async def test_signed_in_user_who_is_not_an_agent_is_denied(instance, admin_user):
    socket = await open_socket(admin_user)
    assert (await next_frame(socket))["type"] == "access_denied"
    assert (await socket.receive_output(timeout=2))["code"] == 4403


async def test_connect_sends_hello_then_snapshot_and_configuration(instance, django_user_model):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    hello = await next_frame(socket)
    assert hello == {"type": "hello", "username": "ada", "instance": "acme"}
    frame = await next_frame(socket, "snapshot")
    assert frame["snapshot"]["state"]["name"] == "Available"
    assert frame["snapshot"]["snapshotTimestamp"].endswith("Z")
    assert frame["configuration"]["username"] == "ada"
    assert {s["name"] for s in frame["configuration"]["agentStates"]} == {"Available", "Offline", "Break", "Lunch"}
    await socket.disconnect()


async def test_call_is_pushed_accepted_and_answered(instance, django_user_model):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    first = await signed_in_agent(socket)
    contact_id = await inbound_call(instance)
    ringing = await next_frame(socket, "snapshot")
    assert ringing["version"] > first["version"]
    contact = ringing["snapshot"]["contacts"][0]
    assert (contact["contactId"], contact["state"]["type"]) == (contact_id, "connecting")
    assert sum(c["initial"] for c in contact["connections"]) == 1
    answer = await request(socket, "acceptContact", {"contactId": contact_id})
    assert answer == {"requestId": "r1", "data": {}}
    connected = await next_frame(socket, "snapshot")
    while connected["snapshot"]["contacts"][0]["state"]["type"] != "connected":
        connected = await next_frame(socket, "snapshot")
    assert connected["snapshot"]["state"]["name"] == "Busy"
    await socket.disconnect()


async def test_agent_cannot_act_on_another_agents_contact(instance, django_user_model):
    ada, bob = await setup_center(instance, django_user_model, "ada", "bob")
    ada_socket, bob_socket = await open_socket(ada.user), await open_socket(bob.user)
    await signed_in_agent(ada_socket)
    bob_first = await signed_in_agent(bob_socket)
    contact_id = await inbound_call(instance)  # ada has been idle longest
    assert (await next_frame(ada_socket, "snapshot"))["snapshot"]["contacts"][0]["contactId"] == contact_id
    answer = await request(bob_socket, "acceptContact", {"contactId": contact_id})
    assert answer["err"]["type"] == "ResourceNotFoundException"
    assert answer["err"]["statusCode"] == 404
    assert await bob_socket.receive_nothing(timeout=0.3)  # never sees ada's snapshots
    assert bob_first["snapshot"]["contacts"] == []
    await ada_socket.disconnect()
    await bob_socket.disconnect()


@pytest.mark.parametrize(
    ("raw", "error_type"),
    [
        ("{not json", "InvalidFrame"),
        ("[1, 2]", "InvalidFrame"),
        ('{"requestId": "x", "params": {}}', "InvalidFrame"),
        ('{"requestId": "x", "method": "formatHardDisk", "params": {}}', "UnknownMethodException"),
        ('{"requestId": "x", "method": "acceptContact", "params": {}}', "InvalidParameterException"),
        ('{"requestId": "x", "method": "acceptContact", "params": {"contactId": 7}}', "InvalidParameterException"),
        ('{"requestId": "x", "method": "putAgentState", "params": []}', "InvalidParameterException"),
        ('{"requestId": "x", "method": "sendDigits", "params": {"contactId": "' + "0" * 36 + '"}}', "Invalid"),
        (json.dumps({"requestId": "x", "method": "getEndpoints", "params": {"pad": "x" * 17000}}), "FrameTooLarge"),
    ],
)
async def test_bad_frames_are_answered_with_errors(instance, django_user_model, raw, error_type):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    await signed_in_agent(socket)
    await socket.send_to(text_data=raw)
    frame = await next_frame(socket)
    assert frame["err"]["type"].startswith(error_type)
    assert 400 <= frame["err"]["statusCode"] < 500
    assert "message" in frame["err"]
    await socket.send_json_to({"type": "heartbeat"})  # still alive
    assert await next_frame(socket) == {"type": "heartbeat"}
    await socket.disconnect()


async def test_binary_frames_are_refused(instance, django_user_model):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    await signed_in_agent(socket)
    await socket.send_to(bytes_data=b"\x00\x01")
    assert (await next_frame(socket))["err"]["type"] == "InvalidFrame"
    await socket.disconnect()


async def test_reconnect_resyncs_from_the_latest_snapshot(instance, django_user_model):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    session = await database_sync_to_async(session_cookie)(ada.user)
    socket = await open_socket(session=session)
    before = await signed_in_agent(socket)
    await socket.disconnect()
    await database_sync_to_async(services.put_agent_state)(ada, await database_sync_to_async(state)(instance, "Break"))
    socket = await open_socket(session=session)
    after = await signed_in_agent(socket)
    assert after["version"] > before["version"]
    assert after["snapshot"]["state"]["name"] == "Break"
    await socket.disconnect()


async def test_two_tabs_of_one_session_both_get_snapshots(instance, django_user_model):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    session = await database_sync_to_async(session_cookie)(ada.user)
    tabs = [await open_socket(session=session), await open_socket(session=session)]
    for tab in tabs:
        frame = await signed_in_agent(tab)
    assert frame["snapshot"]["state"]["name"] == "Available"
    answer = await request(tabs[0], "putAgentState", {"state": {"name": "Lunch"}})
    assert answer["data"] == {}
    for tab in tabs:
        frame = await next_frame(tab, "snapshot")
        while frame["snapshot"]["state"]["name"] != "Lunch":
            frame = await next_frame(tab, "snapshot")
        await tab.disconnect()


async def test_two_browsers_get_multiple_ccp_windows(instance, django_user_model):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    first = await open_socket(ada.user)
    await signed_in_agent(first)
    second = await open_socket(ada.user)  # a second session: another browser
    frame = await signed_in_agent(second)
    assert frame["snapshot"]["state"] == {
        "agentStateARN": None,
        "type": "error",
        "name": "MultipleCcpWindows",
        "startTimestamp": frame["snapshot"]["state"]["startTimestamp"],
    }
    pushed = await next_frame(first, "snapshot")
    assert pushed["snapshot"]["state"]["name"] == "MultipleCcpWindows"
    refused = await request(second, "putAgentState", {"state": {"name": "Available"}})
    assert refused["err"]["type"] == "InvalidStateException"
    await second.disconnect()
    recovered = await next_frame(first, "snapshot")
    assert recovered["snapshot"]["state"]["name"] == "Available"
    await first.disconnect()


async def test_get_endpoints_over_the_socket(instance, django_user_model):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    await signed_in_agent(socket)
    answer = await request(socket, "getEndpoints", {"queueARNs": [], "maxResults": 10})
    assert {e["name"] for e in answer["data"]["endpoints"]} == {"Supervisor desk", "Busy line", "Basic queue"}
    assert answer["data"]["nextToken"] is None
    await socket.disconnect()


async def test_a_lost_push_is_repaired_by_the_version_watcher(instance, django_user_model, monkeypatch):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    first = await signed_in_agent(socket)
    # A change whose push never arrives: made by another process on the in-memory layer,
    # or dropped by a channel layer.
    monkeypatch.setattr("ccphost.engine.snapshots.send_snapshot", lambda pk, message: None)
    contact_id = await inbound_call(instance)
    frame = await next_frame(socket, "snapshot")
    assert frame["version"] > first["version"]
    assert frame["snapshot"]["contacts"][0]["contactId"] == contact_id
    await socket.disconnect()


def grow_version_with_an_old_stamp(agent: Agent) -> None:
    """A version that grew long before its commit, or under another host's clock."""
    old = timezone.now() - timedelta(hours=1)
    Agent.objects.filter(pk=agent.pk).update(snapshot_version=F("snapshot_version") + 1, snapshot_at=old)


@pytest.mark.parametrize("look_at_all_every", [1.0, 1000.0])
async def test_the_watchers_look_at_all_agents_finds_what_its_recent_looks_miss(
    instance, django_user_model, monkeypatch, look_at_all_every
):
    monkeypatch.setattr("ccphost.ccp.consumers.WATCH_ALL_SECONDS", look_at_all_every)
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    first = await signed_in_agent(socket)
    await asyncio.sleep(0.6)  # past the watcher's first look, at all agents
    await database_sync_to_async(grow_version_with_an_old_stamp)(ada)
    if look_at_all_every > 60:
        assert await socket.receive_nothing(timeout=1.5), "the recent looks do not see an old stamp"
    else:
        frame = await next_frame(socket, "snapshot")
        assert frame["version"] == first["version"] + 1
    await socket.disconnect()


async def test_the_watchers_look_at_all_agents_does_not_wait_for_the_engine(instance, django_user_model):
    """Its reads run on a thread of their own: with SQLite, database_sync_to_async's thread
    is the engine's, and a look at all of 10,000 agents held changes up for tens of ms."""
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    first = await signed_in_agent(socket)
    await database_sync_to_async(grow_version_with_an_old_stamp)(ada)
    release = threading.Event()
    busy = asyncio.ensure_future(sync_to_async(release.wait)())  # the engine's thread, with SQLite
    try:
        await asyncio.wait_for(consumers.deliver_missed_snapshots(), 5)
        assert (await next_frame(socket, "snapshot"))["version"] == first["version"] + 1
    finally:
        release.set()
        await busy
    await socket.disconnect()


def database_wrappers_of_this_thread() -> int:
    """Django's connection objects made on this thread (the event loop's, in an async test).
    By type(), not isinstance(): that asks a lazy object (left by other tests) to evaluate."""
    here = threading.get_ident()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), BaseDatabaseWrapper) and o._thread_ident == here)


async def test_a_socket_makes_no_database_connection_of_its_own_on_the_event_loop(instance, django_user_model):
    """On the event loop Django's connections are per task (asgiref's Local follows the
    task's context): a socket's code there that touched ``connection`` made each socket a
    DatabaseWrapper of its own, objects in reference cycles that each closed socket left to
    the cycle collector. The database is the engine's threads' work, with their own."""
    agents = await setup_center(instance, django_user_model, "ada", "bob", "cy", "dee")
    socket = await open_socket(agents[0].user)  # the threads' own connections made
    await signed_in_agent(socket)
    before = database_wrappers_of_this_thread()
    others = [await open_socket(agent.user) for agent in agents[1:]]
    for other in others:
        await signed_in_agent(other)
        assert "data" in await request(other, "getEndpoints", {})
        await other.send_json_to({"type": "heartbeat"})
        assert await next_frame(other, "heartbeat")
        await other.disconnect()
    assert database_wrappers_of_this_thread() == before
    await socket.disconnect()


async def test_a_socket_lets_its_frame_sender_go_once_its_frames_are_sent(instance, django_user_model):
    """A finished sender task (its coroutine and context) is not kept until the socket's
    next frame: at 10,000 sockets that is seconds, long enough to fill the cycle collector's
    older generations with them."""
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    await signed_in_agent(socket)
    await database_sync_to_async(services.configuration_changed)(instance)
    await next_frame(socket, "snapshot")
    (consumer,) = consumers.local_sockets[ada.pk].values()
    for _ in range(100):  # the sender's last step comes after its frame left
        if consumer.frame_sender is None:
            break
        await asyncio.sleep(0.01)
    assert consumer.frame_sender is None
    await socket.disconnect()


async def test_repeated_or_old_snapshots_are_not_resent(instance, django_user_model):
    (ada,) = await setup_center(instance, django_user_model, "ada")
    socket = await open_socket(ada.user)
    first = await signed_in_agent(socket)
    await database_sync_to_async(services.configuration_changed)(instance)
    newer = await next_frame(socket, "snapshot")
    assert newer["version"] == first["version"] + 1
    assert await socket.receive_nothing(timeout=0.6)  # the watcher sees nothing missing
    await socket.disconnect()


def test_the_watchers_look_at_all_agents_holds_one_chunk_of_rows_at_a_time(instance, django_user_model, monkeypatch):
    """The rows of a look are tuples the cycle collector counts while they live: the look
    holds one statement's rows at a time, not all of them (which made the look at 10,000
    agents set off collections)."""
    monkeypatch.setattr("ccphost.ccp.consumers.LOOK_ALL_CHUNK", 40)
    users = [django_user_model.objects.create_user(f"agent{n}") for n in range(400)]
    pks = [seed.make_agent(instance, user).pk for user in users]
    gc.collect()
    gc.disable()
    try:
        start, most = gc.get_count()[0], 0
        seen = []
        for row in consumers.local_versions(pks):
            seen.append(row[0])  # an int: not counted
            most = max(most, gc.get_count()[0] - start)
    finally:
        gc.enable()
    assert sorted(seen) == sorted(pks)
    # One chunk's rows and the driver's objects for them (psycopg makes more than sqlite3),
    # not all 400 rows.
    assert most < 200


async def test_the_watchers_look_at_all_agents_reads_them_in_chunks(instance, django_user_model, monkeypatch):
    """Of several agents, one statement per LOOK_ALL_CHUNK of them: each one behind is found,
    and only those behind."""
    monkeypatch.setattr("ccphost.ccp.consumers.LOOK_ALL_CHUNK", 2)
    monkeypatch.setattr("ccphost.ccp.consumers.WATCH_ALL_SECONDS", 1000.0)  # the watcher's own: at its start only
    agents = await setup_center(instance, django_user_model, "ada", "bob", "cy")
    sockets = [await open_socket(agent.user) for agent in agents]
    firsts = [await signed_in_agent(socket) for socket in sockets]
    await asyncio.sleep(0.6)  # past the watcher's first look, at all agents
    for agent in (agents[0], agents[2]):
        await database_sync_to_async(grow_version_with_an_old_stamp)(agent)
    versions = await database_sync_to_async(consumers.snapshot_versions)(None)
    assert versions == {agents[0].pk: firsts[0]["version"] + 1, agents[2].pk: firsts[2]["version"] + 1}
    for socket in sockets:
        await socket.disconnect()
