"""A per-process daemon thread delivering due webhooks every second, apart from the request
path: a slow or failing endpoint delays only other webhooks, never the CCP."""

import logging
import threading

from django.db import close_old_connections

logger = logging.getLogger(__name__)
TICK_SECONDS = 1.0

_lock = threading.Lock()
_thread: threading.Thread | None = None
_wake = threading.Event()
_stop = threading.Event()


def wake_worker() -> None:
    """Deliver now rather than at the next tick (called when a delivery commits)."""
    _wake.set()


def run_worker() -> None:
    from integrations.webhooks.delivery import deliver_due

    while not _stop.is_set():
        try:
            close_old_connections()
            deliver_due()
        except Exception:
            logger.exception("Delivering webhooks failed; trying again")
        finally:
            close_old_connections()
        _wake.wait(TICK_SECONDS)
        _wake.clear()


def start_webhook_worker() -> threading.Thread:
    """Start the worker thread unless it already runs in this process; returns it."""
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _stop.clear()
            _thread = threading.Thread(target=run_worker, name="ccphost-webhooks", daemon=True)
            _thread.start()
        return _thread


def stop_webhook_worker(timeout: float = 5.0) -> None:
    """Stop the worker after its current pass (tests, shutdown)."""
    global _thread
    with _lock:
        thread, _thread = _thread, None
    if thread is not None:
        _stop.set()
        _wake.set()
        thread.join(timeout)
