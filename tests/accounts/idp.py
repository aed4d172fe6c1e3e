"""A SAML identity provider for tests, built with pysaml2, with its own keys made at test time."""

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server

from ccphost.accounts.keys import self_signed_key_pair

IDP_ENTITY_ID = "https://idp.test.example/metadata"
IDP_SSO_URL = "https://idp.test.example/sso"
IDP_SLO_URL = "https://idp.test.example/slo"


def write_key_pair(directory: Path, name: str) -> tuple[str, str]:
    key_pem, cert_pem = self_signed_key_pair(name)
    key_file, cert_file = directory / f"{name}-key.pem", directory / f"{name}-cert.pem"
    key_file.write_bytes(key_pem)
    cert_file.write_bytes(cert_pem)
    return str(key_file), str(cert_file)


@dataclass
class TestIdentityProvider:
    __test__ = False  # Not a test class, for pytest.

    server: Server
    sp_entity_id: str
    acs_url: str
    key_pair: tuple[str, str]

    @property
    def metadata_xml(self) -> str:
        return str(entity_descriptor(self.server.config))

    def answer(
        self,
        request_id: str | None,
        attributes: dict[str, list[str]],
        *,
        name_id: str = "agent-1",
        audience: str | None = None,
        sign_assertion: bool = True,
        sign_response: bool = False,
    ) -> str:
        """A base64 SAMLResponse to ``request_id``, as the IdP would post it to the ACS."""
        xml = self.server.create_authn_response(
            identity=attributes,
            in_response_to=request_id,
            destination=self.acs_url,
            sp_entity_id=audience or self.sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id),
            userid=name_id,
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_assertion=sign_assertion,
            sign_response=sign_response,
        )
        return base64.b64encode(str(xml).encode()).decode()

    def request_id_from(self, location: str) -> tuple[str, str]:
        """(AuthnRequest id, RelayState) of the SP's redirect to the IdP; checks its signature."""
        query = parse_qs(urlsplit(location).query)
        request = self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        return request.message.id, query.get("RelayState", [""])[0]


def make_idp(
    sp_metadata_xml: str,
    sp_entity_id: str,
    acs_url: str,
    *,
    key_name: str = "idp",
    key_pair: tuple[str, str] | None = None,
    lifetime_seconds: int = 900,
) -> TestIdentityProvider:
    if key_pair is None:
        key_pair = write_key_pair(
            Path(tempfile.mkdtemp(prefix="test-idp-", dir=os.environ.get("CCPHOST_VAR_DIR"))), key_name
        )
    key_file, cert_file = key_pair
    config = IdPConfig()
    config.load(
        {
            "entityid": IDP_ENTITY_ID,
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "key_file": key_file,
            "cert_file": cert_file,
            "service": {
                "idp": {
                    "name": "Test IdP",
                    "endpoints": {
                        "single_sign_on_service": [
                            (IDP_SSO_URL, BINDING_HTTP_REDIRECT),
                            (IDP_SSO_URL, BINDING_HTTP_POST),
                        ],
                        "single_logout_service": [(IDP_SLO_URL, BINDING_HTTP_REDIRECT)],
                    },
                    "policy": {
                        "default": {
                            "lifetime": {"seconds": lifetime_seconds},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_URI,
                        }
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                }
            },
            "metadata": {"inline": [sp_metadata_xml]},
        }
    )
    return TestIdentityProvider(Server(config=config), sp_entity_id, acs_url, key_pair)
