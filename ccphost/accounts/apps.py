import logging

from django.apps import AppConfig

# xmlschema (under pysaml2) logs each schema it loads at INFO, which would print on every
# manage.py command; this runs after settings.LOGGING and before the admin imports pysaml2.
logging.getLogger("xmlschema").setLevel(logging.WARNING)


class AccountsConfig(AppConfig):
    name = "ccphost.accounts"
    label = "accounts"

    def ready(self) -> None:
        # Connects the sign-in throttle's signal receivers (count failures, forget on success).
        from ccphost.accounts import throttle  # noqa: F401
