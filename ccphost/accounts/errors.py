"""Why a sign-in was refused, in words an agent or an admin can act on."""

from dataclasses import dataclass

from saml2.response import IncorrectlySigned, StatusError, UnsolicitedResponse
from saml2.sigver import MissingKey, SignatureError
from saml2.validate import ResponseLifetimeExceed, ToEarly


@dataclass(frozen=True)
class SignInRefusal:
    code: str
    title: str
    explanation: str
    status: int = 403


UNSIGNED = SignInRefusal(
    "unsigned",
    "The sign-in assertion is not signed",
    "ccphost accepts only assertions signed by the instance's identity provider. "
    "Ask your administrator to turn on assertion signing at the identity provider.",
)
BAD_SIGNATURE = SignInRefusal(
    "bad_signature",
    "The sign-in assertion's signature is not valid",
    "The assertion was not signed with the certificate in this instance's identity-provider metadata. "
    "If the identity provider changed its certificate, the administrator must upload its new metadata.",
)
EXPIRED = SignInRefusal(
    "expired",
    "The sign-in assertion has expired",
    "The identity provider's answer is no longer valid (or not valid yet: check the clocks). Sign in again.",
)
WRONG_AUDIENCE = SignInRefusal(
    "wrong_audience",
    "The sign-in assertion is meant for another service",
    "Its audience is not this instance's entity id. "
    "The identity provider must be configured with ccphost's metadata for this instance.",
)
REPLAYED = SignInRefusal(
    "replayed",
    "This sign-in assertion was already used",
    "Each assertion signs in once. Start the sign-in again from the beginning.",
)
UNSOLICITED = SignInRefusal(
    "unsolicited",
    "ccphost did not ask for this sign-in",
    "The answer does not match a sign-in started here in the last minutes. Start the sign-in again.",
)
OTHER_BROWSER = SignInRefusal(
    "other_browser",
    "This sign-in was started in another browser",
    "The answer does not belong to a sign-in started in this browser, so it could sign you in as "
    "someone else. Start the sign-in again here.",
)
IDP_REFUSED = SignInRefusal(
    "idp_refused", "The identity provider did not sign you in", "The identity provider reported an error."
)
MALFORMED = SignInRefusal("malformed", "The sign-in answer could not be read", "It is not a valid SAML response.", 400)
NOT_ALLOWED = SignInRefusal(
    "not_allowed",
    "You may not sign in to this instance",
    "Your identity provider vouched for you, but no administrator has given your account access "
    "to this instance. Ask your administrator.",
)
MISSING_ATTRIBUTE = SignInRefusal(
    "missing_attribute",
    "The identity provider did not say who you are",
    "The assertion lacks the attribute configured as the username, or its value is too long for a username.",
)
UNSAFE_REDIRECT = SignInRefusal(
    "unsafe_redirect",
    "That page is not one ccphost sends you to",
    "After signing in ccphost only returns to its own pages or to the instance's approved origins.",
    400,
)
NO_IDENTITY_PROVIDER = SignInRefusal(
    "no_identity_provider", "Single sign-on is not set up", "This instance has no enabled identity provider.", 404
)


def refusal_for(exc: BaseException) -> SignInRefusal:
    """Map what pysaml2 raised while verifying a response to what the agent is told."""
    message = str(exc)
    if isinstance(exc, SignatureError) and "missing" in message.lower():
        return UNSIGNED
    if isinstance(exc, SignatureError | IncorrectlySigned | MissingKey):
        return BAD_SIGNATURE
    if isinstance(exc, ResponseLifetimeExceed | ToEarly):
        return EXPIRED
    if "AudienceRestrictions" in message:
        return WRONG_AUDIENCE
    if type(exc).__name__ == "OtherBrowser":  # ccphost.accounts.saml.OtherBrowser
        return OTHER_BROWSER
    if isinstance(exc, UnsolicitedResponse):
        return UNSOLICITED
    if isinstance(exc, StatusError):
        return IDP_REFUSED
    return MALFORMED
