"""The login URL of an Amazon Connect instance federated through a SAML identity provider."""

import uuid
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ccphost.instances.models import AWS_REGION


class FederationUrlError(ValueError):
    """The parts given cannot make a safe federation login URL."""


def federation_relay_state(region: str, instance_id: str) -> str:
    """Where Amazon Connect's federation sends the agent after the IdP: the CCP."""
    if not AWS_REGION.match(region or ""):
        raise FederationUrlError(f"{region!r} is not an AWS region like us-east-1.")
    try:
        parsed_id = uuid.UUID(str(instance_id))
    except ValueError:
        raise FederationUrlError(f"{instance_id!r} is not an Amazon Connect instance id (a UUID).") from None
    if str(parsed_id) != str(instance_id).lower():
        raise FederationUrlError(f"Write the instance id in its usual form: {parsed_id}.")
    destination = quote("/ccp-v2", safe="")
    return f"https://{region}.console.aws.amazon.com/connect/federate/{parsed_id}?destination={destination}"


def build_federation_login_url(idp_sso_url: str, region: str, instance_id: str) -> str:
    """The IdP's SSO URL with RelayState set to the Connect federation of the instance's CCP.

    >>> build_federation_login_url(
    ...     "https://idp.example.com/sso?app=connect", "us-east-1", "0a1b2c3d-0000-4000-8000-000000000001"
    ... )  # doctest: +NORMALIZE_WHITESPACE
    'https://idp.example.com/sso?app=connect&RelayState=https%3A%2F%2Fus-east-1.console.aws.amazon.com%2Fconnect%2Ffederate%2F0a1b2c3d-0000-4000-8000-000000000001%3Fdestination%3D%252Fccp-v2'
    """
    parts = urlsplit((idp_sso_url or "").strip())
    if parts.scheme != "https" or not parts.hostname:
        raise FederationUrlError("The identity provider's SSO URL must be an https:// URL.")
    if parts.username or parts.password or parts.fragment:
        raise FederationUrlError("The identity provider's SSO URL has no user info or fragment.")
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "RelayState"]
    query.append(("RelayState", federation_relay_state(region, instance_id)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
