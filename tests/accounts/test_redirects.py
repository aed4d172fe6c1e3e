"""After sign-in ccphost redirects only to its own paths or the instance's approved origins."""

import pytest

from ccphost.accounts.redirects import safe_redirect_target
from tests.accounts.conftest import HOST

REFUSED = [
    "https://evil.example.com/",
    "http://evil.example.com",
    "//evil.example.com/",
    "///evil.example.com/",
    "/\\evil.example.com",
    "\\\\evil.example.com",
    "/\\/evil.example.com",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https:evil.example.com",
    "https:/evil.example.com",
    "%2F%2Fevil.example.com",
    "/%2F%2Fevil.example.com",
    "%2f%2fevil.example.com/",
    "/%5Cevil.example.com",
    "%5C%5Cevil.example.com",
    "javascript%3Aalert(1)",
    "https%3A%2F%2Fevil.example.com",
    "/%0D%0ALocation:%20https://evil.example.com",
    " /connect/acme/login/done/",
    "/connect/acme/login/done/\n",
    "\t//evil.example.com",
    "https://crm.example.com@evil.example.com/",
    "https://user:pw@crm.example.com/",
    "https://crm.example.com.evil.example.com/",
    "http://crm.example.com/",
    "https://crm.example.com:8443/",
    "https://evil.example.com/?next=https://crm.example.com",
    "ftp://crm.example.com/",
    "connect/acme/",
    "",
]

ACCEPTED = [
    "/connect/acme/login/done/",
    "/connect/acme/agent/?tab=1",
    "http://127.0.0.1:8000/connect/acme/agent/",
    "https://crm.example.com/",
    "https://crm.example.com/agents/desk?case=42#top",
    "https://CRM.example.com/agents",
    "https://crm.example.com:443/x",
]


@pytest.mark.parametrize("url", REFUSED)
def test_unsafe_targets_are_refused(instance, url):
    assert safe_redirect_target(instance, url) is None


@pytest.mark.parametrize("url", ACCEPTED)
def test_own_paths_and_approved_origins_are_accepted(instance, url):
    assert safe_redirect_target(instance, url) == url


def test_an_origin_approved_for_another_instance_is_refused(instance, db):
    from ccphost.instances.models import ApprovedOrigin, Instance

    other = Instance.objects.create(alias="other", name="Other")
    ApprovedOrigin.objects.create(instance=other, origin="https://other-crm.example.com")
    assert safe_redirect_target(instance, "https://other-crm.example.com/") is None
    assert safe_redirect_target(other, "https://other-crm.example.com/") == "https://other-crm.example.com/"


@pytest.mark.parametrize("url", ["//evil.example.com/", "https:evil.example.com", "%2F%2Fevil.example.com"])
def test_saml_login_refuses_unsafe_next(client, instance, url, test_idp):
    from ccphost.accounts.models import IdentityProvider

    IdentityProvider.objects.create(instance=instance, metadata_xml=test_idp.metadata_xml)
    response = client.get("/saml2/acme/login/", {"next": url}, HTTP_HOST=HOST)
    assert response.status_code == 400
    assert 'data-reason="unsafe_redirect"' in response.content.decode()


@pytest.mark.parametrize("relay_state", ["javascript:alert(1)", "/\\evil.example.com", "https://evil.example.com/"])
def test_acs_refuses_unsafe_relay_state_before_reading_the_assertion(client, instance, relay_state, test_idp):
    from ccphost.accounts.models import IdentityProvider

    IdentityProvider.objects.create(instance=instance, metadata_xml=test_idp.metadata_xml)
    response = client.post(
        "/saml2/acme/acs/", {"SAMLResponse": "irrelevant", "RelayState": relay_state}, HTTP_HOST=HOST
    )
    assert response.status_code == 400
    assert 'data-reason="unsafe_redirect"' in response.content.decode()
