"""`manage.py instance create|list|show|delete`: contact-center instances from the command line."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ccphost.instances.management.commands.origins import command_actor, get_instance
from ccphost.instances.models import CCP_HEIGHT, Instance
from ccphost.instances.services import delete_instance

# (field, label) pairs that `instance show` prints, in the order of the admin's fieldsets.
SHOWN_FIELDS = [
    ("alias", "Alias"),
    ("name", "Name"),
    ("kind", "Kind"),
    ("ccp_url", "CCP URL"),
    ("aws_region", "AWS region"),
    ("aws_instance_id", "Amazon Connect instance id"),
    ("login_popup", "Login popup"),
    ("login_popup_auto_close", "Close login popup after sign-in"),
    ("login_url", "Login URL"),
    ("allow_framed_softphone", "Allow framed softphone"),
    ("disable_ringtone", "Disable ringtone"),
    ("ringtone_url", "Ringtone URL"),
    ("ccp_width", "CCP width (px)"),
    ("ccp_height", "CCP height (px)"),
]


def validation_message(exc: ValidationError) -> str:
    """One line naming every refused field, for a CommandError."""
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = "Create, list, show and delete contact-center instances."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True, metavar="{create,list,show,delete}")

        create = subcommands.add_parser("create", help="Create an instance.")
        create.add_argument("alias", help="Lowercase letters, digits and hyphens; used in URLs, cannot change.")
        create.add_argument("--name", required=True, help="Display name.")
        create.add_argument("--kind", choices=Instance.Kind.values, default=Instance.Kind.HOSTED)
        create.add_argument(
            "--ccp-url", default="", help="Amazon Connect only: https://<instance>.my.connect.aws/ccp-v2/"
        )
        create.add_argument("--region", default="", help="Amazon Connect only: the AWS region, like us-east-1.")
        create.add_argument("--aws-instance-id", default=None, help="Amazon Connect only: the instance id (UUID).")
        create.add_argument("--login-url", default="", help="Where the login popup goes (default: ccphost's).")
        create.add_argument("--no-login-popup", action="store_true", help="Do not open a login popup.")
        create.add_argument(
            "--no-login-popup-auto-close", action="store_true", help="Keep the login popup open after sign-in."
        )
        create.add_argument("--no-framed-softphone", action="store_true", help="Do not allow a framed softphone.")
        create.add_argument("--disable-ringtone", action="store_true")
        create.add_argument("--ringtone-url", default="")
        create.add_argument("--width", type=int, default=320, help="CCP frame width in px (200-320).")
        create.add_argument("--height", type=int, default=CCP_HEIGHT, help="CCP frame height in px.")

        subcommands.add_parser("list", help="List instances.")

        show = subcommands.add_parser("show", help="Show an instance's options and approved origins.")
        show.add_argument("alias")

        delete = subcommands.add_parser(
            "delete", help="Delete an instance with its contact center; its origins' removal is audited."
        )
        delete.add_argument("alias")
        delete.add_argument("--yes", action="store_true", help="Delete; without it, only say what would go.")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"handle_{options['subcommand']}")(options)

    def handle_create(self, options: dict[str, Any]) -> None:
        instance = Instance(
            alias=options["alias"],
            name=options["name"],
            kind=options["kind"],
            ccp_url=options["ccp_url"],
            aws_region=options["region"],
            aws_instance_id=options["aws_instance_id"] or None,
            login_url=options["login_url"],
            login_popup=not options["no_login_popup"],
            login_popup_auto_close=not options["no_login_popup_auto_close"],
            allow_framed_softphone=not options["no_framed_softphone"],
            disable_ringtone=options["disable_ringtone"],
            ringtone_url=options["ringtone_url"],
            ccp_width=options["width"],
            ccp_height=options["height"],
        )
        try:
            instance.full_clean()
        except ValidationError as exc:
            raise CommandError(f"Instance {options['alias']!r} not created: {validation_message(exc)}") from None
        instance.save()
        self.stdout.write(self.style.SUCCESS(f"Created instance {instance.alias} ({instance.name})."))

    def handle_list(self, options: dict[str, Any]) -> None:
        for instance in Instance.objects.order_by("alias"):
            count = instance.origins.count()
            self.stdout.write(f"{instance.alias}\t{instance.kind}\t{count} origin{'s' * (count != 1)}\t{instance.name}")

    def handle_show(self, options: dict[str, Any]) -> None:
        instance = get_instance(options["alias"])
        for name, label in SHOWN_FIELDS:
            value = getattr(instance, name)
            self.stdout.write(f"{label}: {'' if value is None else value}")
        origins = list(instance.origins.values_list("origin", flat=True))
        self.stdout.write(f"Approved origins ({len(origins)}):")
        for origin in origins:
            self.stdout.write(f"  {origin}")

    def handle_delete(self, options: dict[str, Any]) -> None:
        instance = get_instance(options["alias"])
        counts = [
            (instance.origins.count(), "approved origin"),
            (instance.agents.count(), "agent"),
            (instance.contacts.count(), "contact"),
        ]
        what = ", ".join(f"{count} {noun}{'s' * (count != 1)}" for count, noun in counts)
        if not options["yes"]:
            raise CommandError(f"Instance {instance.alias} has {what}: add --yes to delete it with all of them.")
        delete_instance(instance, command_actor())
        self.stdout.write(self.style.SUCCESS(f"Deleted instance {instance.alias} with {what}."))
