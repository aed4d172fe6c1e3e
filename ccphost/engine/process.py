"""The engine's calls of a serving process, run in a process of their own.

An embedded ccphost (SQLite, the in-process channel layer) is one process, and one GIL: its
event loop (the sockets) and the engine's thread (the changes) took turns on one core while
the other core idled, and each turn was a hand-over of the GIL at every SQLite call, which
nearly doubled what a change cost (docs/performance.md). With ``CCPHOST_ENGINE_PROCESS`` on
(``auto``, the default, for an embedded server and for each scale-out worker on
PostgreSQL), the serving process starts a child process, the engine process, when its
server starts it (the ASGI lifespan startup), and the calls its consumers make through
``engine.threads.engine_sync_to_async`` run there, in the order they came, as on the
engine's one thread before.

- **Calls and answers** go over a socket pair, each a length-prefixed pickle: the function
  (by its module and name), its arguments, then its value or its exception. Both ends are
  this ccphost; nothing else writes to the socket.
- **Pushes.** What a call's changes send to the sockets once they commit
  (``layers.group_send_soon``: snapshots, agent events) comes back on the same socket, in one
  batch, before the call's answer, and the serving process sends it into its channel layer,
  in order (``layers.group_send_all``: with Redis, in one round trip).
- **Groups.** Calls that came while it was busy run together in one transaction, up to
  ``CCPHOST_ENGINE_GROUP`` (run_group): their pushes, then their answers, go once it
  committed; a group that cannot be kept whole is undone and its calls run alone.
- **Everything else stays.** Requests the serving process answers itself (its views, its
  timers, the sockets' snapshot watcher) use the database as before: SQLite takes one writer
  at a time across processes, and each side's caches follow the database (configuration
  stamps, the origin cache).
- **If the engine process dies**, the calls waiting for it fail (the CCP gets an error
  frame), and the next call starts a new one.
"""

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

HEADER = 4  # bytes of each message's length, big-endian
READY_SECONDS = 60  # for the engine process to set Django up
READ_BYTES = 1 << 16  # read off the socket at a time
SOURCE = str(Path(__file__).resolve().parents[2])  # the directory ccphost is imported from
PROTOCOL = pickle.HIGHEST_PROTOCOL


class EngineProcessGone(RuntimeError):
    """The engine process ended before it answered."""


def frame(message: tuple[Any, ...]) -> bytes:
    payload = pickle.dumps(message, PROTOCOL)
    return len(payload).to_bytes(HEADER, "big") + payload


def use_engine_process() -> bool:
    """Whether a serving process should start one (``auto``): an embedded server, or a
    scale-out worker (PostgreSQL, whose engine groups number their events at their end)."""
    from django.conf import settings

    from ccphost.engine.threads import is_sqlite

    if settings.CCPHOST_ENGINE_PROCESS != "auto":
        return False
    if is_sqlite():
        from ccphost.layers import SweepLimitedInMemoryChannelLayer

        layer = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
        return layer == f"{SweepLimitedInMemoryChannelLayer.__module__}.{SweepLimitedInMemoryChannelLayer.__name__}"
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


# The serving process's side.


async def receive(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    """The engine process's next message."""
    size = int.from_bytes(await reader.readexactly(HEADER), "big")
    return tuple(pickle.loads(await reader.readexactly(size)))  # noqa: S301 (our own child's)


class EngineProcess:
    """The child process and the calls waiting for its answers, on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ids = itertools.count()
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.Task[None] | None = None
        self.starting = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self.reader is not None and not self.reader.done()

    async def start(self) -> None:
        async with self.starting:
            if self.running:
                return
            mine, theirs = socket.socketpair()
            with theirs:
                command = [sys.executable, "-m", "ccphost.engine.process", str(theirs.fileno())]
                # This process's settings (its environment), and ccphost importable wherever it runs.
                env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [SOURCE, os.environ.get("PYTHONPATH")]))}
                try:
                    process = subprocess.Popen(command, pass_fds=[theirs.fileno()], env=env)  # noqa: S603 (this Python, this module)
                except OSError:
                    mine.close()
                    raise
            reader, writer = await asyncio.open_unix_connection(sock=mine, limit=2**24)
            try:
                # Serving starts once the engine has Django set up (about a second).
                kind, *_ = await asyncio.wait_for(receive(reader), READY_SECONDS)
                if kind != "ready":
                    raise ValueError(f"it said {kind!r} first")
            except Exception as failed:  # it did not start: it died, hung or said something else
                writer.close()
                process.kill()
                await asyncio.to_thread(process.wait)
                raise OSError(f"The engine process did not start: {failed!r}") from failed
            self.process, self.writer = process, writer
            self.reader = self.loop.create_task(self.read(reader, writer, process))
            logger.info("Engine process %s started", process.pid)

    async def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.running:
            await self.start()
        assert self.writer is not None
        call_id = next(self.ids)
        answer = self.waiting[call_id] = self.loop.create_future()
        try:
            self.writer.write(frame(("call", call_id, func, args, kwargs)))
        except Exception:
            del self.waiting[call_id]
            raise
        return await answer

    async def read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, process: subprocess.Popen[bytes]
    ) -> None:
        """Take the engine process's pushes and answers until it ends. Should this end
        first (a message that did not unpickle here), the socket is closed: the engine
        process then ends too, and the next call starts another."""
        from channels.layers import get_channel_layer

        from ccphost.layers import group_send_all

        layer = get_channel_layer()
        try:
            while True:
                kind, first, second = await receive(reader)
                if kind == "pushes":
                    await group_send_all(layer, first)
                    # The consumers' turn before the answers, as layers.Outbox gives them.
                    await asyncio.sleep(0)
                    continue
                answer = self.waiting.pop(first, None)
                if answer is None or answer.done():
                    continue  # its caller gave up (a socket that closed meanwhile)
                if kind == "value":
                    answer.set_result(second)
                else:
                    answer.set_exception(second)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            logger.exception("Could not read the engine process %s: closing it", process.pid)
        finally:
            writer.close()
            waiting, self.waiting = self.waiting, {}
            code = process.poll()
            if waiting or code not in (None, 0):
                logger.error("Engine process %s ended (exit code %s); %s calls failed", process.pid, code, len(waiting))
            for answer in waiting.values():
                if not answer.done():
                    answer.set_exception(EngineProcessGone("The engine process ended before it answered."))

    async def stop(self, timeout: float = 10) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await self.reader
        if self.process is not None:
            try:
                await asyncio.to_thread(self.process.wait, timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()


_engines: dict[asyncio.AbstractEventLoop, EngineProcess] = {}


async def start_engine_process() -> EngineProcess:
    """The running loop's engine process, started now (the serving process's startup)."""
    loop = asyncio.get_running_loop()
    engine = _engines.get(loop) or EngineProcess(loop)
    await engine.start()
    _engines[loop] = engine
    return engine


async def start_serving_engine() -> None:
    """The engine process of an embedded server, if it uses one (use_engine_process), at its
    startup. Not fatal: without it, the engine's changes run in the serving process."""
    if use_engine_process():
        try:
            await start_engine_process()
        except OSError:
            logger.exception("Could not start the engine process; the engine runs in this one")


async def stop_engine_process() -> None:
    engine = _engines.pop(asyncio.get_running_loop(), None)
    if engine is not None:
        await engine.stop()


def running_engine() -> EngineProcess | None:
    """The engine process of the running event loop, if it has one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return _engines.get(loop)


# The engine process's side.


class Answers:
    """Sends the answers and pushes of the engine process. While the calling thread holds
    them (a call, or a group of calls: run_alone, run_group), its pushes wait for the
    outcome: sent together, then its answers, once it is over (release), or dropped if a
    group was undone. Another thread's pushes go at once."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.holder: int | None = None  # the thread whose pushes are held
        self.held: list[tuple[str, dict[str, Any]]] = []

    def send_data(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def push(self, group: str, message: dict[str, Any]) -> None:
        if self.holder == threading.get_ident():
            self.held.append((group, message))
        else:
            self.send_data(pushes_frame([(group, message)]))

    def hold(self) -> None:
        self.holder, self.held = threading.get_ident(), []

    def drop(self) -> None:
        self.holder, self.held = None, []

    def release(self, answers: list[bytes]) -> None:
        """The held pushes, as one batch, then these answers (answer_frame, error_frame), in
        one write."""
        data = b"".join([pushes_frame(self.held) if self.held else b"", *answers])
        self.drop()
        self.send_data(data)


def pushes_frame(pushes: list[tuple[str, dict[str, Any]]]) -> bytes:
    return frame(("pushes", pushes, None))


def answer_frame(call_id: int, value: Any) -> bytes:
    try:
        return frame(("value", call_id, value))
    except Exception as unsendable:  # a value that does not pickle
        return error_frame(call_id, unsendable)


def error_frame(call_id: int, error: BaseException) -> bytes:
    try:
        pickle.loads(pickle.dumps(error, PROTOCOL))  # noqa: S301 (just made)
    except Exception:
        error = RuntimeError(f"{type(error).__name__}: {error}")
    return frame(("error", call_id, error))


class Calls:
    """The calls the serving process sent, read off the socket by the thread that runs them:
    waiting for one only when none is left, and between calls taking what has come without
    waiting. (A thread of its own reading them woke for each call and took the GIL from the
    calls running, as the event loop did before this process.) The serving process never
    waits to write: its side buffers."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.ready: deque[tuple[Any, ...]] = deque()
        self.open = True

    def next(self) -> tuple[Any, ...] | None:
        """The next call, or None once the serving process closed the socket."""
        self.take(wait=False)
        while not self.ready and self.open:
            self.take(wait=True)
        return self.ready.popleft() if self.ready else None

    def waiting(self, most: int) -> list[tuple[Any, ...]]:
        """Up to ``most`` more calls that have come, without waiting for any."""
        self.take(wait=False)
        return [self.ready.popleft() for _ in range(min(most, len(self.ready)))]

    def take(self, wait: bool) -> None:
        while self.open:
            try:
                data = self.sock.recv(READ_BYTES, 0 if wait else socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self.open = False
                break
            self.buffer += data
            wait = False
        while len(self.buffer) >= HEADER:
            size = int.from_bytes(self.buffer[:HEADER], "big")
            if len(self.buffer) < HEADER + size:
                break
            self.ready.append(pickle.loads(self.buffer[HEADER : HEADER + size]))  # noqa: S301 (our own parent's)
            del self.buffer[: HEADER + size]


def serve_calls(sock: socket.socket) -> None:
    from django.conf import settings

    from ccphost import layers

    answers = Answers(sock)
    layers.send_group_messages_with(answers.push)
    answers.send_data(frame(("ready", os.getpid(), None)))
    calls = Calls(sock)
    while (call := calls.next()) is not None:
        group = [call, *calls.waiting(settings.CCPHOST_ENGINE_GROUP - 1)]
        if len(group) > 1 and run_group(group, answers):
            continue
        for each in group:
            run_alone(each, answers)


def run_alone(call: tuple[Any, ...], answers: Answers) -> None:
    from ccphost.engine.threads import engine_call_connection

    _, call_id, func, args, kwargs = call
    answers.hold()
    with engine_call_connection():
        try:
            answer = answer_frame(call_id, func(*args, **kwargs))
        except Exception as error:
            answer = error_frame(call_id, error)
    answers.release([answer])


class GroupUndone(Exception):
    """A call of a group caught the failure of one of its changes that had written, or its
    transaction ended under it."""


def run_group(group: list[tuple[Any, ...]], answers: Answers) -> bool:
    """The calls that were waiting together, in one transaction (a group commit): one BEGIN
    and COMMIT for all, and the pages their changes share (the event log's last pages, the
    event counter) written once, saved 11-16% of a change's CPU on SQLite in groups of 4 to
    16 (bench.engine_cost). Their pushes, then their answers, go once it committed.

    A call refused by a change that wrote nothing (engine_group) is answered with its error,
    and the group goes on. Should a change fail after writing, whether its call fails or
    catches it, or SQLite end the transaction under it, the whole group is undone, its
    pushes dropped, and False returned: each call then runs alone, as if never grouped.
    A commit hook that fails once the group committed is logged, and the calls answered
    (alone, a call would have raised it: its work stands either way)."""
    from django.db import transaction

    from ccphost.engine.core import engine_group, transaction_lost
    from ccphost.engine.threads import engine_call_connection

    committed = False

    def mark_committed() -> None:
        nonlocal committed
        committed = True

    answered = []
    answers.hold()
    try:
        with engine_call_connection(), transaction.atomic(), engine_group():
            transaction.on_commit(mark_committed)  # the first to run once it committed
            for _, call_id, func, args, kwargs in group:
                try:
                    answered.append(answer_frame(call_id, func(*args, **kwargs)))
                except Exception as error:
                    if transaction.get_rollback():
                        raise
                    answered.append(error_frame(call_id, error))
                if transaction.get_rollback() or transaction_lost():
                    raise GroupUndone
    except Exception:
        if not committed:
            answers.drop()
            return False
        logger.exception("After the engine process committed %s calls together", len(group))
    answers.release(answered)
    return True


def main(fd: int) -> None:
    # The serving process stops it: by closing the socket (its shutdown) or by dying. A
    # Ctrl-C in `make run`, or a SIGTERM to the process group, goes to both; the server then
    # shuts down, with the calls under way answered, and closes the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccphost.settings")
    import django

    django.setup()
    import gc

    from django.conf import settings

    if settings.CCPHOST_GC_THRESHOLDS:
        gc.freeze()
        gc.set_threshold(*settings.CCPHOST_GC_THRESHOLDS)
    if settings.CCPHOST_BACKGROUND_DELIVERY:
        # Webhooks the changes here queue are delivered from here at once (each delivery is
        # claimed in the database: at most one process sends it).
        from integrations.webhooks.worker import start_webhook_worker

        start_webhook_worker()
    with socket.socket(fileno=fd) as sock:
        serve_calls(sock)


if __name__ == "__main__":
    main(int(sys.argv[1]))
