from django.urls import path

from ccphost.ccp import consumers

websocket_urlpatterns = [
    path("ws/ccp/<slug:alias>/", consumers.CcpConsumer.as_asgi()),
]
