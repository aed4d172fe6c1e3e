"""`manage.py run_timers`: fire due engine timers every 250 ms (or once), in any number of
processes at the same time: each timer fires exactly once."""

import time
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ccphost.engine.timers import TICK_SECONDS, run_due_timers


class Command(BaseCommand):
    help = "Fire due engine timers (ring timeouts, after-call work, callbacks, the simulated network)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Fire what is due now, then exit.")
        parser.add_argument("--at", help="With --once: fire what is due at this ISO-8601 time (tests, replays).")
        parser.add_argument("--tick", type=float, default=TICK_SECONDS, help="Seconds between runs.")

    def handle(self, *args: Any, **options: Any) -> None:
        at = self.parse_at(options["at"])
        if options["once"]:
            fired = run_due_timers(at)
            self.stdout.write(f"{fired} timer(s) fired.")
            return
        if at is not None:
            raise CommandError("--at goes with --once.")
        if options["tick"] <= 0:
            raise CommandError("--tick must be positive.")
        self.stdout.write(f"Running due timers every {options['tick']} s; Ctrl-C to stop.")
        try:
            while True:
                run_due_timers()
                time.sleep(options["tick"])
        except KeyboardInterrupt:
            return

    def parse_at(self, value: str | None) -> datetime | None:
        if value is None:
            return None
        moment = parse_datetime(value)
        if moment is None:
            raise CommandError(f"--at: {value!r} is not an ISO-8601 date and time.")
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment)
