from django.urls import path

from ccphost.ccp import consumers
from ccphost.ccp.event_consumer import EventsConsumer

websocket_urlpatterns = [
    path("ws/ccp/<slug:alias>/", consumers.CcpConsumer.as_asgi()),
    path("ws/events/<slug:alias>/", EventsConsumer.as_asgi()),
]
