"""Keep the cached origin sets right when an instance goes away with its origins."""

from typing import Any

from django.db.models.signals import post_delete
from django.dispatch import receiver

from ccphost.instances.models import Instance
from ccphost.instances.services import invalidate_origins


@receiver(post_delete, sender=Instance)
def forget_deleted_instance_origins(sender: type[Instance], instance: Instance, **kwargs: Any) -> None:
    invalidate_origins(instance.alias)
