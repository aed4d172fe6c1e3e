"""Sign-in throttling: failed password sign-ins are counted in Django's cache, per username
and per client address, so every worker process shares the counts (a file cache in the
embedded setup, Redis with REDIS_URL).

After ``CCPHOST_LOGIN_FAILURES_PER_USERNAME`` failures for one username, or
``CCPHOST_LOGIN_FAILURES_PER_IP`` from one address (an IPv6 client's /64), sign-in as that
username, or from that address, is refused without checking the password until
``CCPHOST_LOGIN_FAILURE_WINDOW`` seconds after the last counted failure; a count is forgotten
that long after its last failure too. A successful sign-in forgets its username's count, not
its address's: otherwise signing in to one account of one's own would reset an attacker's
count. A cache that fails never locks anybody out: sign-in goes on unthrottled, with a warning.
The check and the count are two steps, not one: attempts already past the check when a limit
is reached still have their password checked, so parallel attempts can overshoot a limit by
about as many as run at once.

Wiring: ``SignInThrottleBackend`` (ccphost.accounts.backends), first in
AUTHENTICATION_BACKENDS, refuses while throttled; the ``user_login_failed`` and
``user_logged_in`` signals count and forget; ``SignInThrottleMiddleware`` answers a refused
sign-in page with 429. Password sign-in on /accounts/login/, /admin/login/ and
/connect/<alias>/login/ all goes through ``authenticate()``, so all are covered.
"""

import hashlib
import ipaddress
import logging
import math
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger(__name__)

KEY_PREFIX = "sign-in-throttle"
# Set on the request by a refusal, read by SignInThrottleMiddleware.
REFUSAL_ATTRIBUTE = "sign_in_lockout"


@dataclass(frozen=True)
class Scope:
    """What failures are counted against: one username, or one client address."""

    kind: str  # "username" or "address"
    value: str
    limit: int

    def key(self, part: str) -> str:
        # Hashed: a username may hold anything, and cache keys must stay short and plain.
        digest = hashlib.sha256(self.value.encode()).hexdigest()
        return f"{KEY_PREFIX}:{self.kind}:{digest}:{part}"


@dataclass(frozen=True)
class Lockout:
    scope: Scope
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        whom = "for this account" if self.scope.kind == "username" else "from this network address"
        return f"Too many failed sign-ins {whom}; try again in {minutes} minute{'' if minutes == 1 else 's'}."


def normalized_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().casefold()


def client_network(request: HttpRequest) -> str | None:
    """The client's address; an IPv6 client's /64, since one host usually has the whole /64."""
    raw = request.META.get("REMOTE_ADDR") or ""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw or None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def sign_in_scopes(request: HttpRequest | None, username: str | None) -> list[Scope]:
    """The counts a sign-in attempt is held to; a limit of 0 turns its count off."""
    scopes = []
    if username is not None and settings.CCPHOST_LOGIN_FAILURES_PER_USERNAME > 0:
        scopes.append(Scope("username", normalized_username(username), settings.CCPHOST_LOGIN_FAILURES_PER_USERNAME))
    network = client_network(request) if request is not None else None
    if network is not None and settings.CCPHOST_LOGIN_FAILURES_PER_IP > 0:
        scopes.append(Scope("address", network, settings.CCPHOST_LOGIN_FAILURES_PER_IP))
    return scopes


def current_lockout(scopes: list[Scope]) -> Lockout | None:
    """The longest lockout among the scopes, or None (also when the cache cannot answer)."""
    try:
        locked_until = cache.get_many([scope.key("locked-until") for scope in scopes])
    except Exception:  # whatever the cache backend raises: fail open
        logger.warning("Sign-in throttle: the cache cannot be read; sign-in is not throttled", exc_info=True)
        return None
    now = time.time()
    lockouts = [
        Lockout(scope, math.ceil(until - now))
        for scope in scopes
        if (until := locked_until.get(scope.key("locked-until"))) is not None and until > now
    ]
    return max(lockouts, key=lambda lockout: lockout.retry_after, default=None)


def refuse_if_throttled(request: HttpRequest, username: str) -> None:
    """Raises the form error that refuses this sign-in, before any password is checked."""
    lockout = current_lockout(sign_in_scopes(request, username))
    if lockout is None:
        return
    setattr(request, REFUSAL_ATTRIBUTE, lockout)
    logger.info(
        "Sign-in refused while throttled: username %r from %s (%s locked for %d s more)",
        username[:150],
        request.META.get("REMOTE_ADDR"),
        lockout.scope.kind,
        lockout.retry_after,
    )
    raise ValidationError(lockout.message, code="sign_in_throttled")


def count_failure(scope: Scope, window: int) -> int:
    count_key = scope.key("failures")
    cache.add(count_key, 0, timeout=window)
    try:
        count = cache.incr(count_key)
    except ValueError:  # expired between add and incr
        cache.set(count_key, 1, timeout=window)
        count = 1
    # incr keeps the expiry on Redis but not on the file cache: restart the window either way.
    cache.touch(count_key, timeout=window)
    return count


def record_failure(request: HttpRequest | None, username: str | None) -> None:
    window = settings.CCPHOST_LOGIN_FAILURE_WINDOW
    try:
        for scope in sign_in_scopes(request, username):
            count = count_failure(scope, window)
            if count >= scope.limit:
                cache.set(scope.key("locked-until"), time.time() + window, timeout=window)
                logger.warning(
                    "Sign-in throttled: %d failed sign-ins for %s %r (last from %s); refused for %d s",
                    count,
                    scope.kind,
                    scope.value[:150],
                    request.META.get("REMOTE_ADDR") if request is not None else None,
                    window,
                )
    except Exception:  # whatever the cache backend raises: fail open
        logger.warning("Sign-in throttle: the cache cannot be written; failure not counted", exc_info=True)


def forget_username(username: str) -> None:
    scope = Scope("username", normalized_username(username), 0)
    try:
        cache.delete_many([scope.key("failures"), scope.key("locked-until")])
    except Exception:  # whatever the cache backend raises: nothing to undo
        logger.warning("Sign-in throttle: the cache cannot be written; count not reset", exc_info=True)


@receiver(user_login_failed, dispatch_uid="ccphost.accounts.throttle.count")
def count_failed_sign_in(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any
) -> None:
    record_failure(request, credentials.get(get_user_model().USERNAME_FIELD))


@receiver(user_logged_in, dispatch_uid="ccphost.accounts.throttle.forget")
def forget_failed_sign_ins(sender: Any, request: HttpRequest | None, user: Any, **_: Any) -> None:
    forget_username(user.get_username())


class SignInThrottleMiddleware(MiddlewareMixin):
    """A sign-in page re-shown because the throttle refused it answers 429 with Retry-After."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        lockout = getattr(request, REFUSAL_ATTRIBUTE, None)
        if isinstance(lockout, Lockout) and response.status_code == 200:
            response.status_code = 429
            response["Retry-After"] = str(lockout.retry_after)
        return response
