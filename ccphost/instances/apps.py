from django.apps import AppConfig


class InstancesConfig(AppConfig):
    name = "ccphost.instances"
    label = "instances"
    verbose_name = "Instances and approved origins"

    def ready(self) -> None:
        from ccphost.instances import signals  # noqa: F401  (connects receivers)
