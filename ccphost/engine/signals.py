"""Signals the engine sends; integrations (page relay, webhooks, event streams) listen."""

from django.dispatch import Signal

# Sent inside the transaction that records an event, with ``event`` (not yet numbered nor
# saved: its sequence is taken last, engine.core.write_events), ``instance`` and
# ``settings`` (its InstanceSettings): receivers write what must commit or roll back with
# it (webhook deliveries).
event_recorded = Signal()

# Sent once an event's transaction has committed, with ``event`` (an EngineEvent).
event_committed = Signal()
