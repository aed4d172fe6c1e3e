from django.urls import path

from ccphost.ccp import consumers
from ccphost.ccp.event_consumer import EventsConsumer
from ccphost.ccp.supervisor import SupervisorConsumer

websocket_urlpatterns = [
    path("ws/ccp/<slug:alias>/", consumers.CcpConsumer.as_asgi()),
    path("ws/events/<slug:alias>/", EventsConsumer.as_asgi()),
    path("ws/supervisor/<slug:alias>/", SupervisorConsumer.as_asgi()),
]
