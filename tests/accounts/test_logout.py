"""Signing out: from the CCP (POST), and single logout started by the identity provider."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from saml2 import BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.xmldsig import SIG_RSA_SHA256

from ccphost.accounts.models import IdentityProvider
from tests.accounts.conftest import HOST
from tests.accounts.idp import IDP_SLO_URL

SLS = "http://127.0.0.1:8000/saml2/acme/sls/"


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice")


@pytest.fixture
def identity_provider(instance, test_idp) -> IdentityProvider:
    return IdentityProvider.objects.create(instance=instance, metadata_xml=test_idp.metadata_xml)


def logout_request_query(idp, sign: bool) -> dict[str, str]:
    _, request = idp.server.create_logout_request(
        SLS, idp.sp_entity_id, name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text="alice"), sign=False
    )
    info = idp.server.apply_binding(
        BINDING_HTTP_REDIRECT, str(request), SLS, "relay-1", sign=sign, sigalg=SIG_RSA_SHA256 if sign else None
    )
    location = dict(info["headers"])["Location"]
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def test_sign_out_from_the_ccp_ends_the_session_and_reports_terminated(client, instance, alice):
    client.force_login(alice)
    response = client.post("/saml2/acme/logout/", HTTP_HOST=HOST, HTTP_ACCEPT="application/json")
    assert response.json() == {"signedIn": False, "event": "terminated", "alias": "acme"}
    assert "_auth_user_id" not in client.session


def test_sign_out_page_for_browsers(client, instance, alice):
    client.force_login(alice)
    response = client.post("/saml2/acme/logout/", HTTP_HOST=HOST)
    assert response.status_code == 200
    assert 'id="signed-out"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_sign_out_needs_post(client, instance, alice):
    client.force_login(alice)
    assert client.get("/saml2/acme/logout/", HTTP_HOST=HOST).status_code == 405
    assert "_auth_user_id" in client.session


def test_sign_out_needs_the_csrf_token(instance, alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/saml2/acme/logout/", HTTP_HOST=HOST).status_code == 403
    assert "_auth_user_id" in strict.session


def test_signed_logout_request_from_the_idp_ends_the_session(client, identity_provider, alice, test_idp):
    client.force_login(alice)
    response = client.get("/saml2/acme/sls/", logout_request_query(test_idp, sign=True), HTTP_HOST=HOST)
    assert response.status_code == 302
    assert response["Location"].startswith(IDP_SLO_URL + "?SAMLResponse=")
    assert "_auth_user_id" not in client.session


def test_unsigned_logout_request_is_refused(client, identity_provider, alice, test_idp):
    client.force_login(alice)
    response = client.get("/saml2/acme/sls/", logout_request_query(test_idp, sign=False), HTTP_HOST=HOST)
    assert response.status_code == 403
    assert "_auth_user_id" in client.session


def test_logout_request_signed_by_another_key_is_refused(client, identity_provider, alice, impostor_idp):
    client.force_login(alice)
    response = client.get("/saml2/acme/sls/", logout_request_query(impostor_idp, sign=True), HTTP_HOST=HOST)
    assert response.status_code == 403
    assert "_auth_user_id" in client.session


def test_unsigned_logout_request_by_post_is_refused(client, identity_provider, alice, test_idp):
    import base64

    _, request = test_idp.server.create_logout_request(
        SLS, test_idp.sp_entity_id, name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text="alice"), sign=False
    )
    client.force_login(alice)
    saml_request = base64.b64encode(str(request).encode()).decode()
    response = client.post("/saml2/acme/sls/", {"SAMLRequest": saml_request}, HTTP_HOST=HOST)
    assert response.status_code == 403
    assert "_auth_user_id" in client.session


def test_logout_response_without_a_request_of_ours_changes_nothing(client, identity_provider, alice):
    client.force_login(alice)
    response = client.get("/saml2/acme/sls/", {"SAMLResponse": "anything"}, HTTP_HOST=HOST)
    assert response.status_code == 400
    assert "_auth_user_id" in client.session
