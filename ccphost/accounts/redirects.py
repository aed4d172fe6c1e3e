"""Where ccphost may send a browser after sign-in: its own paths, or the instance's approved origins."""

from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.utils.http import url_has_allowed_host_and_scheme

from ccphost.instances.models import Instance
from ccphost.instances.origins import OriginError, normalize_origin
from ccphost.instances.services import approved_origins

MAX_TARGET_LENGTH = 2048


def _is_own_url(url: str) -> bool:
    """A path on ccphost (``/...``), or an absolute URL on exactly SITE_URL's origin."""
    site = urlsplit(settings.SITE_URL)
    if not url.startswith("/"):
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (site.scheme, site.netloc) or parts.username or parts.password:
            return False
    return url_has_allowed_host_and_scheme(url, allowed_hosts={site.netloc}, require_https=site.scheme == "https")


def _is_approved_origin_url(instance: Instance, url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    if not url_has_allowed_host_and_scheme(url, allowed_hosts={parts.netloc}):
        return False
    try:
        origin = normalize_origin(
            f"{parts.scheme}://{parts.netloc}", allow_http_loopback=settings.CCPHOST_ALLOW_HTTP_LOOPBACK
        )
    except OriginError:
        return False
    return origin in approved_origins(instance.alias)


def safe_redirect_target(instance: Instance, url: str | None) -> str | None:
    """``url`` when it is safe to redirect to after signing in to ``instance``, else None.

    Safe: a path or URL on ccphost itself (``/connect/acme/login/done/``) or an http(s) URL on one of
    the instance's approved origins. Refused: other hosts, ``//host``, ``/\\host``, other
    schemes (``javascript:``), ``https:host``, user info, control characters, and anything
    whose percent-decoded form would be unsafe (so no later decoding can turn it into one).
    """
    if not url or len(url) > MAX_TARGET_LENGTH or url != url.strip():
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        return None
    decoded = unquote(url)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in decoded) or "\\" in decoded:
        return None
    if _is_own_url(url) and _is_own_url(decoded):
        return url
    if _is_approved_origin_url(instance, url) and (
        _is_approved_origin_url(instance, decoded) and urlsplit(decoded).netloc == urlsplit(url).netloc
    ):
        return url
    return None
