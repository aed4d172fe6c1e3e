from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "ccphost.engine"
    label = "engine"
