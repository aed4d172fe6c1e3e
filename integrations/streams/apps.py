from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "integrations.streams"
    label = "streams"
    verbose_name = "Event streams (Kinesis)"
