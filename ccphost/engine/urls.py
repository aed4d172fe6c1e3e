"""The simulator API, mounted at /api/v1/ (ccphost/urls.py)."""

from django.urls import path

from ccphost.engine import simulator_api as api

app_name = "simulator"

PREFIX = "instances/<slug:alias>/"

urlpatterns = [
    path(PREFIX + "calls", api.inbound_call, name="calls"),
    path(PREFIX + "callbacks", api.queue_callback, name="callbacks"),
    path(PREFIX + "contacts/<uuid:contact_id>", api.contact_detail, name="contact"),
    path(PREFIX + "contacts/<uuid:contact_id>/hangup", api.customer_hangs_up, name="hangup"),
    path(PREFIX + "contacts/<uuid:contact_id>/digits", api.customer_presses_digits, name="digits"),
    path(PREFIX + "agents/<str:username>/snapshot", api.agent_snapshot, name="agent-snapshot"),
    path(PREFIX + "timers/run", api.run_timers, name="run-timers"),
    path(PREFIX + "events", api.event_log, name="events"),
]
