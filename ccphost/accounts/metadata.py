"""Reading an identity provider's metadata, as uploaded by the admin (no network fetches)."""

from dataclasses import dataclass

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.attribute_converter import ac_factory
from saml2.mdstore import InMemoryMetaData

SSO_BINDINGS = (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST)


class MetadataError(ValueError):
    """The uploaded XML is not usable identity-provider metadata."""


@dataclass(frozen=True)
class IdentityProviderMetadata:
    entity_id: str
    sso_url: str
    slo_url: str
    signing_certificates: int


def _first_location(store: InMemoryMetaData, entity_id: str, kind: str) -> str:
    for binding in SSO_BINDINGS:
        for service in store.service(entity_id, "idpsso_descriptor", kind, binding) or []:
            if service.get("location"):
                return str(service["location"])
    return ""


def read_idp_metadata(xml: str) -> IdentityProviderMetadata:
    """The one identity provider described by ``xml``; MetadataError when there is not exactly one."""
    store = InMemoryMetaData(ac_factory(), xml, check_validity=True)
    try:
        store.load()
    except Exception as exc:  # pysaml2 raises many kinds on malformed or expired XML
        raise MetadataError(f"The metadata could not be read: {exc}") from None
    entity_ids = [entity_id for entity_id, entity in store.items() if entity.get("idpsso_descriptor")]
    if len(entity_ids) != 1:
        raise MetadataError(f"The metadata must describe exactly one identity provider; it has {len(entity_ids)}.")
    entity_id = entity_ids[0]
    sso_url = _first_location(store, entity_id, "single_sign_on_service")
    if not sso_url.startswith("https://") and not sso_url.startswith("http://"):
        raise MetadataError("The identity provider has no single sign-on service for the Redirect or POST binding.")
    certificates = store.certs(entity_id, "idpsso", use="signing")
    if not certificates:
        raise MetadataError("The identity provider's metadata has no signing certificate.")
    slo_url = _first_location(store, entity_id, "single_logout_service")
    return IdentityProviderMetadata(entity_id, sso_url, slo_url, len(certificates))
