"""ccphost.engine.process: an embedded server's engine calls in a process of their own.

The first tests start a real engine process from the test's event loop and call functions of
this module in it (the child imports them by name); the last one serves ccphost as `make run`
does and drives a CCP socket through it."""

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import websockets
from channels.layers import get_channel_layer
from django.conf import settings

from ccphost.engine.core import EngineError, invalid_state
from ccphost.engine.models import Agent, EngineEvent
from ccphost.engine.process import EngineProcess, EngineProcessGone, frame, use_engine_process
from ccphost.engine.threads import is_sqlite
from ccphost.layers import group_send_soon
from tests.test_scale_faults import free_port, wait_port
from tests.test_serve import served, signed_in_agent, start_server  # noqa: F401 (fixture)


def pid_of_this_process() -> int:
    return os.getpid()


def refuse() -> None:
    raise invalid_state("Not now.")


def push_then_answer(group: str, count: int) -> str:
    for n in range(count):
        group_send_soon(group, {"type": "test.message", "n": n})
    return "answered"


def unpicklable() -> Any:
    return lambda: None


def explode() -> None:
    raise RuntimeError("This does not unpickle here.")


class ReadOnlyThere:
    """Pickles in the engine process; unpickling it in the serving process raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (explode, ())


def unreadable_answer() -> ReadOnlyThere:
    return ReadOnlyThere()


def make_table() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS grouped (n integer, grouped integer)")


def record(n: int, how: str = "") -> bool:
    """A change as the engine runs one (change_atomic): it writes ``n``, sends "asked n" to
    the group 'process-test' at once and ``n`` once committed, and says whether it ran in a
    group's transaction. Unless ``how`` it is refused: "refuse", before anything; "hooked",
    once its commit hook waits, before writing; "fail", after writing; "swallow", after
    writing, and the call carries on."""
    from django.db import connection, transaction

    from ccphost.engine.core import change_atomic

    grouped = connection.in_atomic_block
    group_send_soon("process-test", {"type": "test.message", "n": f"asked {n}"})
    try:
        with change_atomic():
            if how == "refuse":
                raise invalid_state(f"Not {n}.")
            transaction.on_commit(lambda: group_send_soon("process-test", {"type": "test.message", "n": n}))
            if how == "hooked":
                raise invalid_state(f"Not {n}.")
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO grouped VALUES (%s, %s)", [n, grouped])
            if how in ("fail", "swallow"):
                raise invalid_state(f"Not {n}.")
    except EngineError:
        if how != "swallow":
            raise
    return grouped


def fails_once_committed() -> bool:
    """A call whose work is done once committed, and whose commit hook then fails."""
    from django.db import connection, transaction

    def explode() -> None:
        raise RuntimeError("A commit hook failed.")

    transaction.on_commit(explode)
    return connection.in_atomic_block


def roll_back_behind_djangos_back(then: str) -> bool:
    """As SQLite does on some errors (a full disk): the transaction ends, and Django, which
    did not end it, does not know. ``then``: "return"; "refuse" (in a change); "retry" (a
    change refused after it, and another, as engine_change runs one again, that writes 1)."""
    from django.db import connection

    from ccphost.engine.core import change_atomic

    def roll_back() -> None:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")

    grouped = connection.in_atomic_block
    if then == "return":
        roll_back()
        return grouped
    try:
        with change_atomic():
            roll_back()
            raise invalid_state("Not after that.")
    except EngineError:
        if then == "refuse":
            raise
    with change_atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO grouped VALUES (%s, %s)", [1, grouped])
    return grouped


def recorded() -> list[tuple[int, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT n, grouped FROM grouped ORDER BY rowid")
        return [tuple(row) for row in cursor.fetchall()]


def children_running(module: str, parent: int) -> list[int]:
    """Processes whose parent is ``parent`` running ``python -m module``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and module.encode() in command:
            found.append(int(entry.name))
    return found


async def started_engine(database_url: str, tmp_path: Path, monkeypatch: Any, settings: Any) -> EngineProcess:
    """An engine process on this database. This side: the embedded layer, the one an engine
    process serves, in both test passes (with Redis, a receiver gets a message some time
    after the layer took it). The child reads this process's environment: nothing of the
    developer's var/ directory, no webhook worker, no Redis."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "ccphost.layers.SweepLimitedInMemoryChannelLayer"}}
    monkeypatch.setenv("CCPHOST_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CCPHOST_BACKGROUND_DELIVERY", "0")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    engine = EngineProcess(asyncio.get_running_loop())
    await engine.start()
    return engine


@pytest.fixture
async def engine(tmp_path, monkeypatch, settings):
    """An engine process with a database of its own (SQLite), in both test passes."""
    engine = await started_engine(f"sqlite:///{tmp_path / 'engine.sqlite3'}", tmp_path, monkeypatch, settings)
    yield engine
    await engine.stop()


def postgresql_url() -> str:
    """This pass's PostgreSQL server, its maintenance database (which always exists)."""
    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        pytest.skip("runs in the scale-out pass (PostgreSQL)")
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"


@pytest.fixture
async def postgresql_engine(tmp_path, monkeypatch, settings):
    """An engine process on PostgreSQL, as a scale-out worker's."""
    engine = await started_engine(postgresql_url(), tmp_path, monkeypatch, settings)
    yield engine
    await engine.stop()


def backend_pid() -> int:
    """(In the engine process.) Its database connection's server process."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def terminate_backend(pid: int) -> None:
    import psycopg

    with psycopg.connect(postgresql_url().replace("postgres://", "postgresql://"), autocommit=True) as db:
        db.execute("SELECT pg_terminate_backend(%s)", [pid])


async def test_an_engine_process_checks_its_connection_only_once_it_was_idle(postgresql_engine):
    """As the engine threads (engine.threads): a connection used a moment ago is not
    checked first (a round trip saved per call, or per group); one cut then fails a call,
    and the next has a new connection. One idle for a while is checked: no call fails."""
    first = await postgresql_engine.call(backend_pid)
    await asyncio.to_thread(terminate_backend, first)
    with pytest.raises(Exception, match=r"(?i)terminat|closed|connection"):
        await postgresql_engine.call(backend_pid)
    second = await postgresql_engine.call(backend_pid)
    assert second != first
    await asyncio.to_thread(terminate_backend, second)
    await asyncio.sleep(1.2)  # engine.threads.HEALTH_CHECK_AFTER: 1 s
    assert await postgresql_engine.call(backend_pid) not in (first, second)


def test_an_engine_error_crosses_processes_whole():
    import pickle

    error = pickle.loads(pickle.dumps(invalid_state("Not now.")))
    assert (type(error), error.as_dict()) == (
        EngineError,
        {"type": "InvalidStateException", "message": "Not now.", "statusCode": 409},
    )
    assert len(frame(("value", 1, "x"))) == int.from_bytes(frame(("value", 1, "x"))[:4], "big") + 4


def test_calls_are_read_whole_however_they_arrive_until_the_socket_closes():
    import socket

    from ccphost.engine.process import Calls

    mine, theirs = socket.socketpair()
    calls = Calls(theirs)
    data = b"".join(frame(("call", n, "f", (n,), {})) for n in range(3))
    mine.sendall(data[:3])  # part of a header
    mine.sendall(data[3:-5])  # the rest of the first two and part of the third
    assert [calls.next(), calls.next()] == [("call", 0, "f", (0,), {}), ("call", 1, "f", (1,), {})]
    mine.sendall(data[-5:])
    assert calls.next() == ("call", 2, "f", (2,), {})
    mine.close()
    assert calls.next() is None
    theirs.close()


async def test_calls_run_in_the_engine_process_and_refusals_come_back_whole(engine):
    child = await engine.call(pid_of_this_process)
    assert child != os.getpid() and child == engine.process.pid
    with pytest.raises(EngineError) as refused:
        await engine.call(refuse)
    assert refused.value.as_dict() == {"type": "InvalidStateException", "message": "Not now.", "statusCode": 409}
    with pytest.raises(Exception, match="pickle"):
        await engine.call(unpicklable)
    assert await engine.call(pid_of_this_process) == child  # still serving


@pytest.fixture
async def pushes(engine):
    """What the engine process sends to the group 'process-test', as it arrives."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("process-test", channel)
    seen: list[Any] = []

    async def receive() -> None:
        while True:
            seen.append((await layer.receive(channel))["n"])

    receiving = asyncio.ensure_future(receive())
    await engine.call(make_table)
    yield seen
    receiving.cancel()


async def test_a_calls_sends_reach_this_processs_layer_in_order_before_its_answer(engine, pushes):
    pushes.append(await engine.call(push_then_answer, "process-test", 3))
    assert pushes == [0, 1, 2, "answered"]


async def calls_together(engine: EngineProcess, *calls: tuple[Any, ...]) -> list[Any]:
    """The calls, sent while the engine process is busy with another, so that they wait
    together; their answers (or errors)."""
    busy = asyncio.ensure_future(engine.call(time.sleep, 1))
    await asyncio.sleep(0.05)
    answers = await asyncio.gather(*(engine.call(*call) for call in calls), return_exceptions=True)
    await busy
    return answers


async def test_calls_that_wait_together_commit_together_and_then_send(engine, pushes):
    answers = await calls_together(engine, *((record, n) for n in range(5)))
    assert answers == [True] * 5  # each ran in the group's transaction
    assert await engine.call(recorded) == [(n, 1) for n in range(5)]
    # Once each, in order, before the answers: what they sent at once, then on commit.
    assert pushes == [*(f"asked {n}" for n in range(5)), 0, 1, 2, 3, 4]


@pytest.mark.parametrize("how", ["fail", "swallow", "hooked"])
async def test_a_group_with_a_change_refused_after_it_wrote_is_undone_and_each_call_runs_alone(engine, pushes, how):
    # Last in the group: nothing after it would find its group's transaction broken.
    answers = await calls_together(engine, (record, 0), (record, 2), (record, 1, how))
    if how != "swallow":
        assert isinstance(answers[2], EngineError) and answers[2].message == "Not 1."
    else:
        assert answers[2] is False  # it carried on, alone
    assert answers[:2] == [False, False]  # run again, alone
    assert await engine.call(recorded) == [(0, 0), (2, 0)]  # nothing of the undone group
    assert pushes == ["asked 0", 0, "asked 2", 2, "asked 1"]  # nor its sends


async def test_a_call_refused_before_its_change_wrote_is_answered_and_its_group_goes_on(engine, pushes):
    answers = await calls_together(engine, (record, 0), (record, 1, "refuse"), (record, 2))
    assert answers[0] is True and answers[2] is True  # in the group's transaction
    assert isinstance(answers[1], EngineError) and answers[1].message == "Not 1."
    assert await engine.call(recorded) == [(0, 1), (2, 1)]
    assert pushes == ["asked 0", "asked 1", "asked 2", 0, 2]  # as each alone would have sent


@pytest.mark.parametrize("then", ["return", "refuse", "retry"])
async def test_a_group_whose_transaction_ended_under_it_is_undone(engine, pushes, then):
    answers = await calls_together(engine, (record, 0), (roll_back_behind_djangos_back, then), (record, 2))
    assert answers[0] is False and answers[2] is False  # run again, alone
    if then == "retry":
        assert answers[1] is False
        assert await engine.call(recorded) == [(0, 0), (1, 0), (2, 0)]
    else:
        assert isinstance(answers[1], Exception)  # alone, there is no transaction to roll back
        assert await engine.call(recorded) == [(0, 0), (2, 0)]  # nothing written outside the group
    assert pushes == ["asked 0", 0, "asked 2", 2]


async def test_a_commit_hook_that_fails_once_a_group_committed_leaves_its_work_answered(engine, pushes):
    answers = await calls_together(engine, (record, 0), (record, 1), (fails_once_committed,))
    assert answers == [True, True, True]
    assert await engine.call(recorded) == [(0, 1), (1, 1)]  # committed once, not run again
    assert pushes == ["asked 0", "asked 1", 0, 1]


def test_groups_are_configured_with_a_limit_of_one_or_more(monkeypatch):
    import subprocess

    check = [sys.executable, "-c", "import django; django.setup()"]
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "ccphost.settings", "CCPHOST_ENGINE_GROUP": "0"}
    failed = subprocess.run(check, env=env, capture_output=True, text=True, check=False)
    assert failed.returncode != 0 and "CCPHOST_ENGINE_GROUP must be 1 or more; got 0" in failed.stderr


async def test_a_dead_engine_process_fails_its_calls_and_the_next_call_starts_another(engine):
    first = engine.process.pid
    with pytest.raises(EngineProcessGone):
        await engine.call(os._exit, 3)
    assert await engine.call(pid_of_this_process) not in (first, os.getpid())


async def test_an_answer_that_cannot_be_read_here_ends_that_engine_process(engine):
    first = engine.process
    with pytest.raises(EngineProcessGone):
        await engine.call(unreadable_answer)
    assert await asyncio.to_thread(first.wait, 10) == 0  # it saw its socket close, and ended
    assert await engine.call(pid_of_this_process) not in (first.pid, os.getpid())


def test_used_by_an_embedded_server_and_a_scale_out_worker_unless_off(settings):
    # This pass's settings: embedded (SQLite, the embedded layer) or scale-out (PostgreSQL, Redis).
    assert use_engine_process() is True
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert use_engine_process() is not is_sqlite()  # SQLite and Channels' layer: not ours
    settings.CCPHOST_ENGINE_PROCESS = "off"
    assert use_engine_process() is False


# Of three agents' sockets, in turn: ada, bob, cy, ada, bob, cy.
BURST = ["Break", "Lunch", "Break", "?", "Break", "Lunch"]


def more_signed_in(django_user_model: Any, username: str) -> str:
    """Another agent of the instance signed_in_agent made: its session key."""
    from django.test import Client

    from ccphost.engine import seed
    from ccphost.instances.models import Instance

    user = django_user_model.objects.create_user(username)
    seed.make_agent(Instance.objects.get(alias="acme"), user)
    client = Client()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


async def connected(url: str, session_key: str) -> Any:
    """A CCP socket of the agent with this session, past its hello and first snapshot."""
    headers = {"Cookie": f"sessionid={session_key}", "Origin": url}
    ws = await websockets.connect(f"{url.replace('http', 'ws')}/ws/ccp/acme/", additional_headers=headers)
    for _ in range(2):
        await ws.recv()
    return ws


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_served_embedded_server_runs_its_engine_in_a_child_that_comes_back(served, django_user_model):  # noqa: F811
    session_key = signed_in_agent(django_user_model)
    port = int(served.rsplit(":", 1)[1])
    server = next(p for p in children_running("ccphost.serve", os.getpid()) if port_of(p) == port)
    engines = children_running("ccphost.engine.process", server)
    embedded = settings.CCPHOST_ENGINE_PROCESS == "auto" and use_engine_process()
    assert len(engines) == (1 if embedded else 0)

    more_sessions = [more_signed_in(django_user_model, name) for name in ("bob", "cy")]
    burst: list[dict[str, Any]] = []

    async def scenario() -> list[dict[str, Any]]:
        headers = {"Cookie": f"sessionid={session_key}", "Origin": served}
        async with websockets.connect(f"{served.replace('http', 'ws')}/ws/ccp/acme/", additional_headers=headers) as ws:
            frames = [json.loads(await ws.recv()) for _ in range(2)]  # hello, snapshot
            state = {"name": "Break", "type": "not_routable"}
            await ws.send(json.dumps({"requestId": "r1", "method": "putAgentState", "params": {"state": state}}))
            frames += await until(ws, "r1", lambda f: f.get("type") == "snapshot" and "Break" in json.dumps(f))
            await ws.send(
                json.dumps({"requestId": "r2", "method": "putAgentState", "params": {"state": {"name": "?"}}})
            )
            frames += await until(ws, "r2")
            if engines:
                os.kill(engines[0], signal.SIGKILL)
                await asyncio.sleep(0.5)
            state = {"name": "Lunch", "type": "not_routable"}
            await ws.send(json.dumps({"requestId": "r3", "method": "putAgentState", "params": {"state": state}}))
            frames += await until(ws, "r3", lambda f: f.get("type") == "snapshot" and "Lunch" in json.dumps(f))
            # Three agents' requests sent together (the engine process takes those that
            # wait together as one group), one of them refused.
            others = [await connected(served, key) for key in more_sessions]
            sockets = [ws, *others]
            for n, (socket_, name) in enumerate(zip(sockets * 2, BURST, strict=True)):
                request = {"requestId": f"b{n}", "method": "putAgentState", "params": {"state": {"name": name}}}
                await socket_.send(json.dumps(request))
            for n, socket_ in enumerate(sockets * 2):
                burst.extend(await until(socket_, f"b{n}"))
            for other in others:
                await other.close()
            return frames

    frames = asyncio.run(scenario())
    answers = {f["requestId"]: f for f in frames if "requestId" in f}
    assert "data" in answers["r1"] and "data" in answers["r3"]
    assert answers["r2"]["err"]["type"] == "ResourceNotFoundException"
    answers = {f["requestId"]: f for f in burst if "requestId" in f}
    assert [("err" in answers[f"b{n}"]) for n in range(6)] == [False, False, False, True, False, False]
    statuses = {a.user.username: a.status.name for a in Agent.objects.filter(instance__alias="acme")}
    assert statuses == {"ada": "Break", "bob": "Break", "cy": "Lunch"}  # the last each asked
    events = EngineEvent.objects.filter(instance__alias="acme").order_by("sequence")
    sequences = list(events.values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))  # numbered without gaps
    if engines:
        again = children_running("ccphost.engine.process", server)
        assert len(again) == 1 and again != engines


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.django_db(transaction=True)
def test_a_sigterm_to_the_servers_process_group_ends_both_quietly(tmp_path):
    """As `make run`'s Ctrl-C or a service manager's stop: the serving process shuts down,
    closing the socket, and the engine process (which ignores the signal) ends after it."""
    if not use_engine_process():
        pytest.skip("an embedded server's engine process")
    port = free_port()
    server, log = start_server(tmp_path, port, start_new_session=True)
    try:
        wait_port(port)
        (engine,) = children_running("ccphost.engine.process", server.pid)
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(30) in (0, -signal.SIGTERM)  # uvicorn raises the signal again once shut down
        deadline = time.monotonic() + 10
        while Path(f"/proc/{engine}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{engine}").exists()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    text = log.read_text()
    assert f"Engine process {engine} started" in text and "ended" not in text, text


def port_of(pid: int) -> int | None:
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return int(command[command.index(b"--port") + 1]) if b"--port" in command else None


async def until(ws: Any, request_id: str, also: Any = None) -> list[dict[str, Any]]:
    """Frames up to the answer to ``request_id`` and, if ``also``, one frame matching it."""
    frames: list[dict[str, Any]] = []
    answered = matched = False
    while not (answered and (also is None or matched)):
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
        answered = answered or frames[-1].get("requestId") == request_id
        matched = matched or (also is not None and also(frames[-1]))
    return frames
