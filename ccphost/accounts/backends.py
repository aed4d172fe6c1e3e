"""The authentication backend recorded in sessions of agents signed in through SAML."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.http import HttpRequest


class SamlAgentBackend(ModelBackend):
    """Loads SAML-signed-in users on later requests; never authenticates anything itself.

    The assertion consumer (ccphost.accounts.views.saml_acs) verifies the assertion and calls
    ``login()`` naming this backend; ``authenticate()`` refuses, so passwords never pass here.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        return None
