"""Loaded with ``-p tests.isolation`` (pyproject addopts) before Django reads its settings:
each test run gets its own var/ directory (SQLite test database, file cache, uploads), so
runs side by side, or beside `make run`, never share files; and its own channel-layer prefix,
so that on a shared Redis (whose pub/sub ignores the database number) no other run's pushes
reach its sockets."""

import atexit
import os
import shutil
import tempfile

# Tests deliver webhooks and Kinesis records by calling the functions, not from threads.
os.environ.setdefault("CCPHOST_BACKGROUND_DELIVERY", "0")
os.environ.setdefault("CCPHOST_CHANNEL_PREFIX", f"ccphost-test-{os.getpid()}-")

if "CCPHOST_VAR_DIR" not in os.environ:
    _var_dir = tempfile.mkdtemp(prefix="ccphost-test-")
    os.environ["CCPHOST_VAR_DIR"] = _var_dir
    atexit.register(shutil.rmtree, _var_dir, ignore_errors=True)
