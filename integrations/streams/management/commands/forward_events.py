import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from integrations.streams.forwarder import forward_all


class Command(BaseCommand):
    help = "Put agent and contact event records to the configured Kinesis streams."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            put = forward_all()
            if options["once"]:
                self.stdout.write(f"Put {put} records.")
                return
            time.sleep(1)
