"""Loaded with ``-p tests.isolation`` (pyproject addopts) before Django reads its settings:
each test run gets its own var/ directory (SQLite test database, file cache, uploads), so
runs side by side, or beside `make run`, never share files."""

import atexit
import os
import shutil
import tempfile

# Tests deliver webhooks and Kinesis records by calling the functions, not from threads.
os.environ.setdefault("CCPHOST_BACKGROUND_DELIVERY", "0")

if "CCPHOST_VAR_DIR" not in os.environ:
    _var_dir = tempfile.mkdtemp(prefix="ccphost-test-")
    os.environ["CCPHOST_VAR_DIR"] = _var_dir
    atexit.register(shutil.rmtree, _var_dir, ignore_errors=True)
