"""ccphost.affinity: each serving process takes one CPU at its server's lifespan startup,
the workers of a machine on different CPUs; nothing is pinned elsewhere (tests, commands)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccphost.affinity import choose_cpu, parse_setting

ROOT = Path(__file__).resolve().parent.parent
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
several_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="needs a machine with two CPUs or more")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    ("raw", "parsed"), [("auto", "auto"), (" OFF ", "off"), ("3,1", [1, 3]), ("0", [0]), ("1, 1", [1])]
)
def test_the_setting(raw, parsed):
    assert parse_setting(raw) == parsed


@pytest.mark.parametrize("raw", ["", "all", "1;2", "-1", "0,x", "1.5"])
def test_a_bad_setting_is_named(raw):
    with pytest.raises(ValueError, match="CCPHOST_CPU_AFFINITY must be auto, off or CPU numbers"):
        parse_setting(raw)


def test_a_bad_setting_stops_the_settings(tmp_path):
    env = {**os.environ, "CCPHOST_CPU_AFFINITY": "fast", "CCPHOST_VAR_DIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
        | {"DJANGO_SETTINGS_MODULE": "ccphost.settings"},
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "CCPHOST_CPU_AFFINITY must be auto, off or CPU numbers" in run.stderr


def test_processes_spread_over_the_cpus_and_the_gone_are_forgotten(tmp_path):
    registry = tmp_path / "cpu-affinity.json"
    registry.write_text(json.dumps({str(dead_pid()): 0}))  # a process that is gone
    assert choose_cpu([0, 1], registry, os.getpid()) == 0
    assert choose_cpu([0, 1], registry, os.getppid()) == 1
    assert choose_cpu([0, 1], registry, 1) == 0  # ties: the lowest
    assert choose_cpu([0, 1], registry, os.getpid()) == 0  # again: its own old entry does not count
    recorded = json.loads(registry.read_text())
    assert recorded == {str(os.getpid()): 0, str(os.getppid()): 1, "1": 0}


def test_a_registry_that_cannot_be_read_is_started_again(tmp_path):
    registry = tmp_path / "var" / "cpu-affinity.json"
    registry.parent.mkdir()
    registry.write_text("not json")
    assert choose_cpu([2, 3], registry, os.getpid()) == 2
    assert json.loads(registry.read_text()) == {str(os.getpid()): 2}


LIFESPAN = """
import asyncio, json, os, sys, threading
import django
django.setup()
from ccphost.asgi import application

async def lifespan():
    messages = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        messages.put_nowait({"type": kind})
    sent = []
    async def send(message):
        sent.append(message["type"])
    await application({"type": "lifespan", "asgi": {"version": "3.0"}}, messages.get, send)
    return sent

before = sorted(os.sched_getaffinity(0))
sent = asyncio.run(lifespan())
later = []
thread = threading.Thread(target=lambda: later.extend(sorted(os.sched_getaffinity(0))))
thread.start(); thread.join()
print(json.dumps({"before": before, "after": sorted(os.sched_getaffinity(0)), "thread": later, "sent": sent}))
"""


def lifespan_in_a_process(tmp_path: Path, setting: str | None, script: str = LIFESPAN) -> dict:
    env = os.environ | {"CCPHOST_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "ccphost.settings"}
    env.pop("CCPHOST_CPU_AFFINITY", None)
    if setting is not None:
        env["CCPHOST_CPU_AFFINITY"] = setting
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@several_cpus
def test_a_server_process_takes_one_cpu_at_startup_for_all_its_threads(tmp_path):
    seen = lifespan_in_a_process(tmp_path, "auto")
    assert seen["sent"] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen["before"] == CPUS
    assert len(seen["after"]) == 1 and seen["thread"] == seen["after"]
    chosen = lifespan_in_a_process(tmp_path, ",".join(str(cpu) for cpu in CPUS[-1:]))
    assert chosen["after"] == CPUS[-1:]


@pytest.mark.parametrize("setting", ["off", None])
def test_off_the_default_pins_nothing(tmp_path, setting):
    seen = lifespan_in_a_process(tmp_path, setting)
    assert seen["after"] == seen["before"] == CPUS
    assert seen["sent"] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not (tmp_path / "cpu-affinity.json").exists()


@several_cpus
def test_the_reader_thread_stays_free(tmp_path):
    """engine.threads' reader (mostly SQLite's work, outside the GIL) runs on any CPU."""
    script = LIFESPAN.replace(
        "later = []",
        "from ccphost.engine.threads import reader_sync_to_async\n"
        "later = []\n"
        "reader = asyncio.run(reader_sync_to_async(lambda: sorted(os.sched_getaffinity(0)))())",
    ).replace('"sent": sent}', '"sent": sent, "reader": reader}')
    seen = lifespan_in_a_process(tmp_path, "auto", script)
    assert len(seen["after"]) == 1 and seen["reader"] == CPUS


def allowed_cpus(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no CPU list for {pid}")


@several_cpus
def test_the_workers_of_a_server_take_different_cpus(tmp_path):
    """uvicorn with two workers, as `make run-scaled` starts it (here on SQLite)."""
    env = os.environ | {
        "CCPHOST_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "ccphost.settings",
        "CCPHOST_CPU_AFFINITY": "auto",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "ccphost.serve", "--port", "0", "--workers", "2"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    registry = tmp_path / "cpu-affinity.json"
    try:
        deadline = time.monotonic() + 60
        recorded: dict[str, int] = {}
        while time.monotonic() < deadline and len(recorded) < 2:
            time.sleep(0.2)
            if registry.exists():
                recorded = json.loads(registry.read_text() or "{}")
        assert len(recorded) == 2, recorded
        assert sorted(recorded.values()) == CPUS[:2]
        assert sorted(allowed_cpus(int(pid)) for pid in recorded) == [str(cpu) for cpu in CPUS[:2]]
    finally:
        server.terminate()
        server.wait(timeout=30)
