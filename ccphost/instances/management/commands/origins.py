"""`manage.py origins add|remove|list|sync`: an instance's approved origins, through the
services; `sync` makes an Amazon Connect instance's approved origins equal ccphost's.

Each subcommand is an entry in SUBCOMMANDS plus a `handle_<name>` method.
"""

import getpass
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ccphost.instances.models import Instance, OriginAudit
from ccphost.instances.services import Actor, OriginChangeError, approve_origins, revoke_origins


def add_origin_arguments(parser: CommandParser) -> None:
    parser.add_argument("alias", help="The instance's alias.")
    parser.add_argument("origins", nargs="+", metavar="ORIGIN", help="Like https://crm.example.com[:port].")


def add_alias_argument(parser: CommandParser) -> None:
    parser.add_argument("alias", help="The instance's alias.")


def add_sync_arguments(parser: CommandParser) -> None:
    parser.add_argument("alias", help="The alias of an Amazon Connect instance.")
    parser.add_argument("--dry-run", action="store_true", help="Show the difference, change nothing.")


SUBCOMMANDS: dict[str, tuple[str, Callable[[CommandParser], None]]] = {
    "add": ("Approve origins (all or none).", add_origin_arguments),
    "remove": ("Remove approved origins (all or none).", add_origin_arguments),
    "list": ("List the approved origins.", add_alias_argument),
    "sync": ("Make Amazon Connect's approved origins equal ccphost's, showing the difference.", add_sync_arguments),
}


def command_actor() -> Actor:
    try:
        name = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name in this environment
        name = "command"
    return Actor(source=OriginAudit.Source.COMMAND, name=name or "command")


def get_instance(alias: str) -> Instance:
    try:
        return Instance.objects.get(alias=alias)
    except Instance.DoesNotExist:
        raise CommandError(f"No instance {alias!r}") from None


class Command(BaseCommand):
    help = "Add, remove and list the origins approved to embed an instance's CCP."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
        for name, (help_text, add_subcommand_arguments) in SUBCOMMANDS.items():
            add_subcommand_arguments(subcommands.add_parser(name, help=help_text))

    def handle(self, *args: Any, **options: Any) -> None:
        handler: Callable[[dict[str, Any]], None] = getattr(self, f"handle_{options['subcommand']}")
        try:
            handler(options)
        except OriginChangeError as exc:
            raise CommandError(f"Nothing changed: {exc}") from None

    def handle_add(self, options: dict[str, Any]) -> None:
        instance = get_instance(options["alias"])
        created = approve_origins(instance, options["origins"], command_actor())
        for row in created:
            self.stdout.write(f"+ {row.origin}")
        self.stdout.write(self.style.SUCCESS(f"Approved {len(created)} origin(s) for {instance.alias}."))

    def handle_remove(self, options: dict[str, Any]) -> None:
        instance = get_instance(options["alias"])
        removed = revoke_origins(instance, options["origins"], command_actor())
        for origin in removed:
            self.stdout.write(f"- {origin}")
        self.stdout.write(self.style.SUCCESS(f"Removed {len(removed)} origin(s) from {instance.alias}."))

    def handle_sync(self, options: dict[str, Any]) -> None:
        from integrations.connect.client import OriginSyncError
        from integrations.connect.sync import format_plan, sync_instance_origins

        instance = get_instance(options["alias"])
        try:
            plan, applied = sync_instance_origins(instance, dry_run=options["dry_run"], actor=command_actor())
        except OriginSyncError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(format_plan(plan))
        if applied:
            self.stdout.write(self.style.SUCCESS(f"Amazon Connect's approved origins for {instance.alias} now match."))
        elif options["dry_run"]:
            self.stdout.write("Dry run: nothing changed.")

    def handle_list(self, options: dict[str, Any]) -> None:
        instance = get_instance(options["alias"])
        for origin in instance.origins.values_list("origin", flat=True):
            self.stdout.write(origin)
