"""ccphost as a SAML service provider, one per instance, built with pysaml2 at request time.

Why pysaml2 directly and not djangosaml2's views and backend: djangosaml2 reads one global
``SAML_CONFIG`` (identity providers here live in the database, one per instance), keeps
outstanding requests in the browser session (the IdP's cross-site POST does not carry a
SameSite=Lax session cookie in development), and its backend signs in any existing user
whose username matches an attribute, which would let one instance's identity provider sign
in as another instance's agent or as an admin. pysaml2 does the SAML itself (XML, signatures
through xmlsec1, conditions, audience); this module only feeds it per-instance configuration.
"""

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.response import AuthnResponse

from ccphost.accounts.keys import ensure_sp_key_pair
from ccphost.accounts.models import IdentityProvider
from ccphost.instances.models import Instance


def saml_setting(name: str) -> Any:
    return getattr(settings, name)


def sp_urls(instance: Instance) -> dict[str, str]:
    """The SP's absolute URLs for the instance, on SITE_URL (what the IdP is told)."""
    site = settings.SITE_URL
    return {
        "entity_id": site + reverse("accounts:saml_metadata", args=[instance.alias]),
        "acs": site + reverse("accounts:saml_acs", args=[instance.alias]),
        "sls": site + reverse("accounts:saml_sls", args=[instance.alias]),
    }


def sp_config(instance: Instance, idp: IdentityProvider | None) -> SPConfig:
    """The pysaml2 SP configuration of ``instance``; without ``idp`` it only serves metadata."""
    key_file, cert_file = ensure_sp_key_pair()
    urls = sp_urls(instance)
    config: dict[str, Any] = {
        "entityid": urls["entity_id"],
        "xmlsec_binary": saml_setting("SAML_XMLSEC_BINARY"),
        "accepted_time_diff": saml_setting("SAML_ACCEPTED_TIME_DIFF"),
        "allow_unknown_attributes": True,
        "key_file": str(key_file),
        "cert_file": str(cert_file),
        "encryption_keypairs": [{"key_file": str(key_file), "cert_file": str(cert_file)}],
        "service": {
            "sp": {
                "name": f"ccphost {instance.name}",
                "endpoints": {
                    "assertion_consumer_service": [(urls["acs"], BINDING_HTTP_POST)],
                    "single_logout_service": [(urls["sls"], BINDING_HTTP_REDIRECT), (urls["sls"], BINDING_HTTP_POST)],
                },
                "allow_unsolicited": False,
                "authn_requests_signed": True,
                "logout_requests_signed": True,
                "want_assertions_signed": True,
                "want_response_signed": bool(idp and idp.want_response_signed),
                "want_assertions_or_response_signed": False,
            }
        },
    }
    if idp is not None:
        config["metadata"] = {"inline": [idp.metadata_xml]}
    sp = SPConfig()
    sp.load(config)
    return sp


def saml_client(idp: IdentityProvider) -> Saml2Client:
    return Saml2Client(config=sp_config(idp.instance, idp))


def _request_key(alias: str, request_id: str) -> str:
    return f"ccphost:saml-request:{alias}:{request_id}"


BINDING_COOKIE = "ccphost_saml"


def remember_request(alias: str, request_id: str) -> str:
    """Keep an AuthnRequest id server-side (not in the session: the IdP's POST may not carry
    it), bound to a random value the starting browser keeps in a cookie; returns that value."""
    binding = secrets.token_urlsafe(24)
    cache.set(_request_key(alias, request_id), binding, timeout=saml_setting("SAML_REQUEST_LIFETIME"))
    return binding


class OtherBrowser(Exception):
    """The answer is to a sign-in that another browser started (login CSRF)."""


class OutstandingRequests(Mapping[str, str]):
    """The AuthnRequests of one instance still awaiting an answer, as pysaml2 wants them.

    pysaml2 only asks ``in`` and ``[]`` for the response's InResponseTo; a response to
    anything else is unsolicited and refused.
    """

    def __init__(self, alias: str, binding: str | None, require_binding: bool) -> None:
        self.alias = alias
        self.binding = binding
        self.require_binding = require_binding
        self.other_browser = False

    def __getitem__(self, request_id: str) -> str:
        stored = cache.get(_request_key(self.alias, request_id)) if isinstance(request_id, str) else None
        if not stored:
            raise KeyError(request_id)
        if self.binding != stored and (self.binding is not None or self.require_binding):
            self.other_browser = True
            raise KeyError(request_id)
        return ""

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 1  # Truthy, so that pysaml2 consults it.


@dataclass(frozen=True)
class SignedInIdentity:
    """What a verified assertion says about the agent."""

    name_id: str
    attributes: dict[str, list[str]]
    assertion_id: str
    expires_at: datetime


def verified_identity(
    idp: IdentityProvider, saml_response: str, binding: str | None, require_binding: bool = True
) -> SignedInIdentity:
    """Parse and verify a base64 SAMLResponse; pysaml2's exceptions pass through (see errors.py).

    ``binding`` is the starting browser's cookie: the answer must be to a request this browser
    made (when ``require_binding`` is false, as in development over plain HTTP where the IdP's
    cross-site POST cannot carry the cookie, a missing one is let through, a wrong one never).
    """
    client = saml_client(idp)
    outstanding = OutstandingRequests(idp.instance.alias, binding, require_binding)
    try:
        response = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST, outstanding=outstanding)
    except Exception:
        if outstanding.other_browser:
            raise OtherBrowser("The answer is to a sign-in started in another browser.") from None
        raise
    if not isinstance(response, AuthnResponse) or response.assertion is None:
        raise ValueError("The SAML response holds no assertion.")
    if response.issuer() != idp.entity_id:
        raise ValueError(f"The response comes from {response.issuer()!r}, not this instance's identity provider.")
    # Without a NotOnOrAfter, pysaml2 still refuses responses issued over a day ago: remember a day.
    expires_at = (
        datetime.fromtimestamp(response.not_on_or_after, tz=timezone.utc)
        if response.not_on_or_after
        else datetime.now(tz=timezone.utc) + timedelta(days=1)
    )
    return SignedInIdentity(
        name_id=response.name_id.text if response.name_id is not None else "",
        attributes={key: [str(v) for v in values] for key, values in response.ava.items()},
        assertion_id=str(response.assertion.id),
        expires_at=expires_at,
    )


def sso_login_path(instance: Instance) -> str | None:
    """Where the login popup starts single sign-on for ``instance``; None without an enabled IdP."""
    if not IdentityProvider.objects.filter(instance=instance, enabled=True).exists():
        return None
    return reverse("accounts:saml_login", args=[instance.alias])
