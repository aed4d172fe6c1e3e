"""Authentication backends: the sign-in throttle's gate, and the backend recorded in
sessions of agents signed in through SAML."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.http import HttpRequest

from ccphost.accounts import throttle


class SignInThrottleBackend(ModelBackend):
    """First in AUTHENTICATION_BACKENDS: refuses a password sign-in while its username or
    client address is throttled (ccphost.accounts.throttle), before any backend checks the
    password; otherwise it steps aside and the next backend checks it.

    The refusal is a ``ValidationError``, which ``authenticate()`` lets through (it stops only
    on PermissionDenied, and then says nothing but "wrong password"): the sign-in form that
    called it, stock, admin or instance, shows the refusal's message as its error.
    A ModelBackend, so that sessions naming it (``force_login`` names the first backend) load
    their user.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if request is not None and username is not None and password is not None:
            throttle.refuse_if_throttled(request, username)
        return None


class SamlAgentBackend(ModelBackend):
    """Loads SAML-signed-in users on later requests; never authenticates anything itself.

    The assertion consumer (ccphost.accounts.views.saml_acs) verifies the assertion and calls
    ``login()`` naming this backend; ``authenticate()`` refuses, so passwords never pass here.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        return None
