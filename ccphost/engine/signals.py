"""Signals the engine sends; integrations (page relay, webhooks, event streams) listen."""

from django.dispatch import Signal

# Sent inside the transaction that records an event, with ``event``, ``instance`` and
# ``settings`` (its InstanceSettings, locked): receivers write what must commit or roll
# back with it (webhook deliveries).
event_recorded = Signal()

# Sent once an event's transaction has committed, with ``event`` (an EngineEvent).
event_committed = Signal()
