"""The one function that turns what a person typed into an approved origin.

Used by the model, the admin, the commands, the API and the three enforcement checks, so an
origin means the same thing everywhere. The rules are Amazon Connect's (HTTPS, at most 267
characters) plus what browsers compare: scheme, host and port, nothing else.
"""

import ipaddress
from urllib.parse import urlsplit

import idna
from django.conf import settings

MAX_ORIGIN_LENGTH = 267
DEFAULT_PORTS = {"https": 443, "http": 80}
LOOPBACK_NAMES = {"localhost"}


class OriginError(ValueError):
    """An origin was refused; the message names the problem."""


def normalize_origin(raw: str, *, allow_http_loopback: bool | None = None) -> str:
    """Return the canonical ``scheme://host[:port]`` for ``raw`` or raise ``OriginError``."""
    if not isinstance(raw, str):
        raise OriginError("An origin must be text.")
    text = raw.strip()
    if not text:
        raise OriginError("The origin is empty.")
    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise OriginError("An origin cannot contain spaces or control characters.")
    if "://" not in text:
        raise OriginError(f"{text!r} has no scheme: write it as https://host[:port].")
    if "\\" in text:
        raise OriginError("An origin cannot contain a backslash.")

    try:
        parts = urlsplit(text)
    except ValueError as exc:  # unbalanced brackets, NFKC-unsafe characters...
        raise OriginError(f"{text!r} is not a valid origin ({exc}).") from None
    scheme = parts.scheme.lower()
    if "?" in text:
        raise OriginError("An origin cannot have a query string (remove everything from '?').")
    if "#" in text:
        raise OriginError("An origin cannot have a fragment (remove everything from '#').")
    if parts.path not in ("", "/"):
        raise OriginError(f"An origin cannot have a path ({parts.path!r}); keep only scheme, host and port.")
    if "@" in parts.netloc:
        raise OriginError("An origin cannot contain user info (user:password@).")
    if "*" in parts.netloc:
        raise OriginError("Wildcards are not allowed: approve each origin exactly.")

    candidate = f"{scheme}://{parts.netloc}"
    if len(candidate) > MAX_ORIGIN_LENGTH:
        raise OriginError(f"An origin can be at most {MAX_ORIGIN_LENGTH} characters; this one has {len(candidate)}.")
    host = _normalize_host(parts.netloc)
    port = _port(parts.netloc, scheme)

    if scheme == "http":
        if allow_http_loopback is None:
            allow_http_loopback = settings.CCPHOST_ALLOW_HTTP_LOOPBACK
        if not _is_loopback(host):
            raise OriginError("Only HTTPS origins are allowed (plain HTTP only for loopback hosts in development).")
        if not allow_http_loopback:
            raise OriginError(
                "Plain HTTP is allowed only for loopback hosts when DEBUG or CCPHOST_ALLOW_HTTP_LOOPBACK is on."
            )
    elif scheme != "https":
        raise OriginError(f"The scheme must be https, not {parts.scheme!r}.")

    origin = f"{scheme}://{host}"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        origin += f":{port}"
    if len(origin) > MAX_ORIGIN_LENGTH:
        raise OriginError(f"An origin can be at most {MAX_ORIGIN_LENGTH} characters; this one has {len(origin)}.")
    return origin


def _split_host_port(netloc: str) -> tuple[str, str | None]:
    if netloc.startswith("["):
        end = netloc.find("]")
        if end == -1:
            raise OriginError("An IPv6 address must be closed with ']'.")
        rest = netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise OriginError("Unexpected text after the IPv6 address.")
        return netloc[: end + 1], (rest[1:] if rest else None)
    host, sep, port = netloc.rpartition(":")
    if not sep:
        return netloc, None
    return host, port


def _normalize_host(netloc: str) -> str:
    host, _ = _split_host_port(netloc)
    if not host:
        raise OriginError("The origin has no host.")
    if host.startswith("["):
        if "%" in host:
            raise OriginError("An IPv6 zone id (%...) cannot be part of an origin.")
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise OriginError(f"{host} is not a valid IPv6 address.") from None
        return f"[{address.compressed}]"
    if ":" in host:
        raise OriginError("An IPv6 address must be written in brackets, like https://[2001:db8::1].")
    if host.endswith("."):
        raise OriginError("The host cannot end with a dot.")
    if all(ch.isdigit() or ch == "." for ch in host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise OriginError(f"{host} is not a valid IPv4 address.") from None
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise OriginError(f"{host!r} is not a valid host name ({exc}).") from None


def _port(netloc: str, scheme: str) -> int | None:
    _, raw = _split_host_port(netloc)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit():
        raise OriginError(f"The port {raw!r} is not a number.")
    port = int(raw)
    if not 1 <= port <= 65535:
        raise OriginError(f"The port {port} is out of range (1-65535).")
    return port


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of_url(url: str) -> str:
    """The origin of a full URL, for comparing a Referer or a CCP URL with approved origins."""
    parts = urlsplit(url)
    return normalize_origin(f"{parts.scheme}://{parts.netloc}", allow_http_loopback=True)
