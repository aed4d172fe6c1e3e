"""What one engine change costs, alone: wall time, this process's CPU and the database
server's CPU (PostgreSQL: its backend process for this connection) per ``put_agent_state``,
toggling agents between two statuses that are not routable, one after the other. The
snapshot pushes to the channel layer are left out (the server's event loop sends them).

    python -m bench.engine_cost                    # SQLite (embedded)
    python -m bench.engine_cost --mode scaled      # PostgreSQL (BENCH_DATABASE_URL)

The full bench (bench.run) measures the server under load; this tells where a change's
CPU goes, which bounds what one core can do."""

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.run import ROOT, cpu_ticks, mode_env


def backend_cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    return cpu_ticks(Path(f"/proc/{pid}/stat")) / os.sysconf("SC_CLK_TCK")


def measure(changes: int, agents: int, pushes: bool = False, group: int = 1) -> dict[str, float | str]:
    import django

    django.setup()
    if pushes:
        # As in the engine process (engine.process): each change also builds its snapshot
        # frame, and its sends are pickled, as they are before going to the serving process.
        from ccphost.engine.process import frame
        from ccphost.layers import send_group_messages_with

        def pickle_only(group: str, message: dict[str, Any]) -> None:
            frame(("push", group, message))

        send_group_messages_with(pickle_only)
    from django.db import connection, transaction

    from ccphost.engine.core import engine_group
    from ccphost.engine.models import Agent, AgentState
    from ccphost.engine.services import put_agent_state

    bench = list(Agent.objects.select_related("instance", "status").filter(instance__alias="bench")[:agents])
    statuses = {s.name: s for s in AgentState.objects.filter(instance__alias="bench", name__in=["Break", "Lunch"])}
    backend = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
    names = {agent.pk: agent.status.name for agent in bench}

    def toggle(agent: Agent) -> None:
        names[agent.pk] = "Lunch" if names[agent.pk] == "Break" else "Break"
        put_agent_state(agent, statuses[names[agent.pk]])

    def run(first: int, count: int) -> None:
        """Changes from the ``first``, in groups of ``group`` (as the engine process runs
        the calls waiting together: engine.process.run_group), or each alone."""
        for start in range(first, first + count, group):
            if group == 1:
                toggle(bench[start % len(bench)])
                continue
            with transaction.atomic(), engine_group():
                for n in range(start, min(start + group, first + count)):
                    toggle(bench[n % len(bench)])

    run(0, len(bench))  # warm up: plans compiled, statements prepared, caches filled
    wall, cpu, server = time.perf_counter(), time.process_time(), backend_cpu_seconds(backend)
    run(0, changes)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = backend_cpu_seconds(backend) - server
    # What the changes leave for the cycle collector: objects freed only by a collection
    # (in reference cycles), which make the process's collections longer and more frequent.
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    for n in range(len(bench)):
        toggle(bench[n % len(bench)])
    garbage = gc.collect()
    kinds = Counter(type(o).__qualname__ for o in gc.garbage).most_common(6)
    gc.garbage.clear()
    gc.set_debug(0)
    gc.enable()
    return {
        "database": connection.vendor,
        "changes": changes,
        "group": group,
        "wall_ms": round(1000 * wall / changes, 3),
        "process_cpu_ms": round(1000 * cpu / changes, 3),
        "database_cpu_ms": round(1000 * server / changes, 3) if backend else "in process",
        "cyclic_garbage_per_change": round(garbage / len(bench), 1),
        "cyclic_garbage_kinds": ", ".join(f"{kind} {count // len(bench)}" for kind, count in kinds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["embedded", "scaled"], default="embedded")
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument(
        "--pushes",
        action="store_true",
        help="each change also builds and pickles its sends, as the engine process does",
    )
    parser.add_argument(
        "--group",
        type=int,
        default=1,
        help="changes run together in one transaction, as the engine process runs the calls waiting (1: each alone)",
    )
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # the measuring process
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(measure(args.changes, args.agents, args.pushes, args.group)))
        return 0
    with tempfile.TemporaryDirectory(prefix="ccphost-engine-cost-") as var_dir:
        env = mode_env(args.mode, Path(var_dir), 0, "default")
        # No channel layer: in the server its sends are the event loop's work, not the
        # change's (layers.group_send_soon); here each would open a Redis connection.
        env.pop("REDIS_URL", None)
        if args.mode == "scaled":
            subprocess.run([sys.executable, "tools/ensure_database.py"], cwd=ROOT, env=env, check=True)
        setup = [sys.executable, "-m", "bench.setup_agents", str(args.agents)]
        subprocess.run(setup, cwd=ROOT, env=env, check=True, capture_output=True)
        inside = [sys.executable, "-m", "bench.engine_cost", "--inside", "--changes", str(args.changes)]
        inside += ["--pushes"] if args.pushes else []
        inside += ["--group", str(args.group)]
        run = subprocess.run([*inside, "--agents", str(args.agents)], cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode:
        print(run.stderr, file=sys.stderr)
        return 1
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(" | ".join(f"{key} {value}" for key, value in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
