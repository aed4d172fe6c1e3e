"""ASGI entry point: Django for HTTP, Channels for /ws/ behind the origin check."""

import gc
import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccphost.settings")
django_asgi_app = get_asgi_application()

if settings.CCPHOST_GC_THRESHOLDS:
    # What importing Django and the project made lives as long as the process: out of the
    # collector's way; then collect less often (settings.CCPHOST_GC_THRESHOLDS says why).
    gc.freeze()
    gc.set_threshold(*settings.CCPHOST_GC_THRESHOLDS)

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from ccphost.background import BackgroundWorkMiddleware  # noqa: E402
from ccphost.ccp.routing import websocket_urlpatterns  # noqa: E402
from ccphost.ccp.websocket_origin import WebsocketOriginValidator  # noqa: E402
from ccphost.lifespan import ServerLifespanMiddleware  # noqa: E402

# Timers, webhook deliveries and the Kinesis forwarder start with each process's first
# request; its engine process and its CPU come when its server starts it (ccphost.lifespan).
application = ServerLifespanMiddleware(
    BackgroundWorkMiddleware(
        ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                "websocket": WebsocketOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
            }
        )
    )
)
