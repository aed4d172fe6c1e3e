"""`manage.py simulate`: drive the simulated telephone network of an instance from a shell."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ccphost.engine import network
from ccphost.engine.core import EngineError, engine_settings
from ccphost.engine.models import Contact
from ccphost.engine.simulator_api import contact_data
from ccphost.instances.models import Instance


def attribute(value: str) -> tuple[str, str]:
    key, sep, text = value.partition("=")
    if not sep or not key:
        raise CommandError(f"--attr {value!r}: write key=value.")
    return key, text


class Command(BaseCommand):
    help = "Simulate customers: calls and callbacks to a queue, hang-ups, digits; show the simulator token."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        for name, number_flag, help_text in (
            ("call", "--from", "A customer calls a queue."),
            ("callback", "--number", "A customer asks a queue to call back."),
        ):
            sub = actions.add_parser(name, help=help_text)
            sub.add_argument("alias")
            sub.add_argument("--queue", default="BasicQueue", help="Queue name, id or ARN (default BasicQueue).")
            sub.add_argument(number_flag, dest="number", default="+15555550123", help="The customer's E.164 number.")
            sub.add_argument("--attr", action="append", default=[], type=attribute, help="Contact attribute key=value.")
        hangup = actions.add_parser("hangup", help="The customer hangs up.")
        hangup.add_argument("alias")
        hangup.add_argument("contact_id")
        digits = actions.add_parser("digits", help="The customer presses digits.")
        digits.add_argument("alias")
        digits.add_argument("contact_id")
        digits.add_argument("digits")
        contacts = actions.add_parser("contacts", help="List the contacts not ended.")
        contacts.add_argument("alias")
        token = actions.add_parser("token", help="Print the instance's simulator API token.")
        token.add_argument("alias")

    def handle(self, *args: Any, **options: Any) -> None:
        instance = Instance.objects.filter(alias=options["alias"]).first()
        if instance is None:
            raise CommandError(f"No instance {options['alias']!r}.")
        try:
            self.run(instance, options)
        except EngineError as refused:
            raise CommandError(f"{refused.type}: {refused.message}") from None

    def run(self, instance: Instance, options: dict[str, Any]) -> None:
        action = options["action"]
        if action == "token":
            self.stdout.write(engine_settings(instance).simulator_token)
            return
        if action == "contacts":
            for contact in Contact.objects.filter(instance=instance).exclude(state=Contact.State.ENDED):
                self.show(contact)
            return
        if action in ("call", "callback"):
            queue = network.find_queue(instance, options["queue"])
            start = network.start_queue_callback if action == "callback" else network.start_inbound_contact
            contact = start(instance, queue, options["number"], dict(options["attr"]))
        elif action == "hangup":
            contact = network.customer_hangs_up(instance, options["contact_id"])
        else:
            contact = network.customer_presses_digits(instance, options["contact_id"], options["digits"])
        self.show(Contact.objects.get(pk=contact.pk))

    def show(self, contact: Contact) -> None:
        self.stdout.write(json.dumps(contact_data(contact)))
