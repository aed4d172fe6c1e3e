"""Signatures: ``X-Ccphost-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">``."""

import hashlib
import hmac
import time

SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The value of the ``X-Ccphost-Signature`` header."""
    message = str(timestamp).encode() + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature_header: str,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """For receivers: True if ``signature_header`` signs ``timestamp`` and the raw request
    ``body`` with ``secret``, and the timestamp is within ``tolerance`` seconds of now
    (refusing replays of old requests). Compare the raw body bytes, not re-encoded JSON."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    return hmac.compare_digest(sign(secret, sent_at, raw), signature_header or "")
