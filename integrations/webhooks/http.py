"""The one way webhooks talk HTTP: a requests session that always has a timeout, never
follows redirects, and reads at most a little of the answer."""

import threading

import requests

USER_AGENT = "ccphost-webhooks/1"
MAX_RESPONSE_EXCERPT = 1024
_local = threading.local()


class WebhookSession:
    """A ``requests.Session`` wrapper whose ``post`` cannot be called without a timeout."""

    def __init__(self) -> None:
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT

    def post(self, url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
        """POST ``body``; returns (status code, start of the response text). Raises
        ``requests.Timeout`` or another ``requests.RequestException`` on failure."""
        if not timeout or timeout <= 0:
            raise ValueError("A webhook request needs a positive timeout.")
        with self._session.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
        ) as response:
            excerpt = next(response.iter_content(MAX_RESPONSE_EXCERPT), b"")
            return response.status_code, excerpt.decode("utf-8", "replace")


def webhook_session() -> WebhookSession:
    """One session per thread (``requests.Session`` is not thread-safe), reusing connections."""
    session: WebhookSession | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = WebhookSession()
    return session
