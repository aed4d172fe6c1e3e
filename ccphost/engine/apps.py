from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "ccphost.engine"
    label = "engine"

    def ready(self) -> None:
        from ccphost.engine.configuration import watch_engine_configuration

        watch_engine_configuration()
