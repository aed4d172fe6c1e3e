"""The second enforcement layer: a WebSocket handshake under /ws/<kind>/<alias>/ is refused
before any data flows unless its Origin is ccphost's own or approved for that instance."""

import contextlib
import logging
import re
from typing import Any

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from ccphost.instances.origins import OriginError, normalize_origin, origin_of_url
from ccphost.instances.services import is_origin_approved

logger = logging.getLogger(__name__)

WS_PATH = re.compile(r"^/ws/[a-z]+/(?P<alias>[a-z0-9-]{1,40})/")


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def own_origins(scope: dict[str, Any]) -> set[str]:
    """ccphost's own origins: SITE_URL, and the origin the client reached us at when its Host
    is one of ALLOWED_HOSTS (so 127.0.0.1 and localhost both work in development)."""
    origins = {origin_of_url(settings.SITE_URL)}
    host = header(scope, b"host")
    if host:
        domain, _ = split_domain_port(host)
        if domain and validate_host(domain, settings.ALLOWED_HOSTS):
            scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
            with contextlib.suppress(OriginError):
                origins.add(normalize_origin(f"{scheme}://{host}", allow_http_loopback=True))
    return origins


def origin_verdict(scope: dict[str, Any]) -> bool | str:
    """True or False when the handshake alone decides (no Origin, a path outside /ws/, an
    invalid origin, ccphost's own origin: every CCP socket); else the instance alias whose
    approved origins, in the database, decide."""
    origin = header(scope, b"origin")
    if not origin:
        return False
    match = WS_PATH.match(scope.get("path", ""))
    if match is None:
        return False
    try:
        normalized = normalize_origin(origin, allow_http_loopback=True)
    except OriginError:
        return False
    if normalized in own_origins(scope):
        return True
    return str(match["alias"])


class WebsocketOriginValidator:
    """ASGI middleware: deny the handshake (HTTP 403) for an origin not allowed."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not await self.allowed(scope):
            logger.warning("WebSocket refused: origin %r for %s", header(scope, b"origin"), scope.get("path"))
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)

    @staticmethod
    async def allowed(scope: dict[str, Any]) -> bool:
        """Decided in the event loop when the handshake suffices; only an origin that is
        not ccphost's own costs a trip to a database thread (one fewer per CCP connect)."""
        verdict = origin_verdict(scope)
        if isinstance(verdict, bool):
            return verdict
        return bool(await database_sync_to_async(is_origin_approved)(verdict, header(scope, b"origin")))
