import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from integrations.webhooks.delivery import deliver_due


class Command(BaseCommand):
    help = "Deliver due webhooks, once a second (or one pass with --once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            attempted = deliver_due()
            if options["once"]:
                self.stdout.write(f"Attempted {attempted} webhook deliveries.")
                return
            time.sleep(1)
