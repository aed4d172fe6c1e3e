"""The serving process's cycle-collector thresholds (CCPHOST_GC_THRESHOLDS, ccphost/asgi.py),
checked in a fresh interpreter: the setting is read when the ASGI application is imported."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRINT_THRESHOLDS = "import gc, ccphost.asgi; print(gc.get_threshold())"


def thresholds_with(value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("CCPHOST_GC_THRESHOLDS", None)
    if value is not None:
        env["CCPHOST_GC_THRESHOLDS"] = value
    return subprocess.run(
        [sys.executable, "-c", PRINT_THRESHOLDS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "(5000, 10, 1000)"), ("100000,20,30", "(100000, 20, 30)"), ("", "(700, 10, 10)")],
)
def test_the_asgi_process_collects_with_the_configured_thresholds(value, expected):
    run = thresholds_with(value)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == expected


@pytest.mark.parametrize("value", ["1,2", "a,b,c", "100000,-1,5"])
def test_bad_thresholds_are_refused_by_name(value):
    run = thresholds_with(value)
    assert run.returncode != 0
    assert "CCPHOST_GC_THRESHOLDS must be three whole numbers" in run.stderr
