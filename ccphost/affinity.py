"""One CPU for each serving process (``CCPHOST_CPU_AFFINITY``).

A ccphost process runs its event loop and its engine threads under one GIL: only one of
them runs Python at a time, and they hand the GIL over several times per engine change
(at every SQLite or PostgreSQL call). When the threads sit on different cores, each
hand-over wakes a thread on another core; on this project's 2-core VM that cost more than
the work itself (the engine thread switched 8 times per change and its CPU per change
nearly doubled against the same change run alone). Kept on one core, the threads hand the
GIL over without crossing cores: embedded capacity 560 -> 720 changes/s, and scale-out
(2 workers, each on its own core) 428 -> 513/s (docs/performance.md).

With ``CCPHOST_CPU_AFFINITY`` set, each serving process pins itself, and every thread it
has or starts, to one CPU when its server starts it (the ASGI lifespan startup, which
uvicorn sends once per worker process; an application imported elsewhere, as by tests, is
never pinned). The workers of one machine spread over the CPUs they may use: a small
registry in ``CCPHOST_VAR_DIR``, under a file lock, records which process took which CPU,
and each new process takes the CPU with the fewest live ccphost processes. The reader
thread (engine.threads), whose work is mostly SQLite's outside the GIL, stays free.

What it costs: the process has one core, so work that ran beside it on another core (the
socket sends, SQLite's own work) waits its turn. With 10,000 sockets in one process,
connects (31-42 s against 43-51 s) and the fan-out (513-593/s against 391-508/s) gained,
but API round trips stalled now and then in both modes (p99 above the 50 ms target in 4
of 6 pinned runs and 3 of 5 unpinned ones). Off by default, for a deployment to choose by
measuring, and because the registry spreads only processes that share ``CCPHOST_VAR_DIR``:
separate deployments on one host (containers, each with a directory of its own and, under a
CPU quota rather than a CPU set, the host's CPUs) would each take the same first CPU.

``CCPHOST_CPU_AFFINITY``: ``off`` (the default), ``auto`` (any CPU the process may use),
or a list of CPU numbers to choose from (``2,3``).
"""

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

REGISTRY_NAME = "cpu-affinity.json"


def parse_setting(raw: str) -> str | list[int]:
    """``auto``, ``off`` or a list of CPU numbers; ValueError naming the problem otherwise."""
    value = raw.strip().lower()
    if value in ("auto", "off"):
        return value
    cpus = [part.strip() for part in value.split(",")]
    if not cpus or not all(part.isdigit() for part in cpus):
        raise ValueError(f"CCPHOST_CPU_AFFINITY must be auto, off or CPU numbers such as 0,1; got {raw!r}")
    return sorted({int(part) for part in cpus})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def choose_cpu(candidates: list[int], registry: Path, pid: int) -> int:
    """The candidate CPU with the fewest live processes recorded in ``registry`` (then
    the lowest number), recorded there for ``pid``. Entries of processes that are gone
    are dropped; a registry that cannot be read is started again."""
    registry.parent.mkdir(parents=True, exist_ok=True)
    with registry.open("a+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        try:
            recorded = {int(p): int(c) for p, c in json.loads(file.read() or "{}").items()}
        except (ValueError, TypeError, AttributeError):
            recorded = {}
        live = {p: c for p, c in recorded.items() if p != pid and alive(p)}
        counts = dict.fromkeys(candidates, 0)
        for cpu in live.values():
            if cpu in counts:
                counts[cpu] += 1
        chosen = min(candidates, key=lambda cpu: (counts[cpu], cpu))
        live[pid] = chosen
        file.seek(0)
        file.truncate()
        file.write(json.dumps({str(p): c for p, c in sorted(live.items())}))
    return chosen


# The CPUs the process could use before it was pinned; None while it is not pinned.
_unpinned_cpus: set[int] | None = None


def unpin_this_thread() -> None:
    """Let the calling thread (and those it starts) run on any CPU the process could use
    before it was pinned: for a thread whose work is mostly outside the GIL."""
    if _unpinned_cpus is not None:
        os.sched_setaffinity(0, _unpinned_cpus)


def pin_all_threads(cpu: int) -> None:
    """This process's threads, and those they start later, on ``cpu`` alone."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(tid), {cpu})


def pin_serving_process(setting: str | list[int], registry: Path) -> int | None:
    """Pin this process to one CPU as ``setting`` says; the CPU, or None when it is not
    pinned (``off``, one CPU to use anyway, no CPU affinity on this system)."""
    if setting == "off" or not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc/self/task"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if isinstance(setting, str):  # auto
        if len(allowed) < 2:
            return None
        candidates = allowed
    else:
        candidates = [cpu for cpu in setting if cpu in allowed]
        if not candidates:
            logger.warning("CCPHOST_CPU_AFFINITY lists none of this process's CPUs %s: not pinned", allowed)
            return None
    global _unpinned_cpus
    cpu = choose_cpu(candidates, registry, os.getpid())
    _unpinned_cpus = set(allowed)
    pin_all_threads(cpu)
    logger.info("Process %s runs on CPU %s (CCPHOST_CPU_AFFINITY)", os.getpid(), cpu)
    return cpu
