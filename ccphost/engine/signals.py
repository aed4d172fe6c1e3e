"""Signals the engine sends; integrations (page relay, webhooks, event streams) listen."""

from django.dispatch import Signal

# Sent once an event's transaction has committed, with ``event`` (an EngineEvent).
event_committed = Signal()
