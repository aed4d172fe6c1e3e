"""`manage.py demo`: an instance to try ccphost with, idempotent."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from ccphost.engine import seed
from ccphost.instances.models import Instance
from ccphost.instances.origins import origin_of_url
from ccphost.instances.services import Actor, approve_origins

DEMO_ALIAS = "demo"
SAMPLE_CRM_ORIGINS = ["http://127.0.0.1:8001", "http://localhost:8001"]
ADMIN = ("admin", "demo-admin-pw")
AGENTS = [("agent1", "demo-agent-pw", "Ada", "Agent"), ("agent2", "demo-agent-pw", "Bob", "Agent")]


class Command(BaseCommand):
    help = "Create (or refresh) the demo instance, its approved origins, an admin and two agent logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Run even when DEBUG is off.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("demo creates well-known passwords: it runs only with DEBUG on (or --force).")
        with transaction.atomic():
            instance, created = Instance.objects.get_or_create(
                alias=DEMO_ALIAS, defaults={"name": "Demo contact center"}
            )
            wanted = [origin_of_url(settings.SITE_URL), *SAMPLE_CRM_ORIGINS]
            have = set(instance.origins.values_list("origin", flat=True))
            missing = [o for o in dict.fromkeys(wanted) if o not in have]
            if missing:
                approve_origins(instance, missing, Actor(source="command", name="demo"))
            self.ensure_user(*ADMIN, superuser=True)
            users = [self.ensure_user(name, pw, first_name=first, last_name=last) for name, pw, first, last in AGENTS]
            seed_engine(instance, users)
        site = settings.SITE_URL
        self.stdout.write(
            f"Demo instance '{DEMO_ALIAS}' {'created' if created else 'ready'}.\n"
            f"  Agent page:  {site}/connect/{DEMO_ALIAS}/agent/   (agent1 / agent2, password {AGENTS[0][1]})\n"
            f"  CCP:         {site}/connect/{DEMO_ALIAS}/ccp-v2/\n"
            f"  Admin:       {site}/admin/   ({ADMIN[0]} / {ADMIN[1]})\n"
            f"  Approved origins: {', '.join(sorted(set(wanted)))}"
        )

    def ensure_user(self, username: str, password: str, superuser: bool = False, **fields: str) -> Any:
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults=fields)
        if created:
            user.set_password(password)
            user.is_staff = user.is_superuser = superuser
            user.save()
        return user


def seed_engine(instance: Instance, users: list[Any]) -> None:
    """Default states, queue and routing profile, and the agents."""
    seed.seed_instance_defaults(instance)
    for user in users:
        seed.make_agent(instance, user)
