"""SAML sign-in through a pysaml2 test identity provider: what signs an agent in, and what is refused."""

import time
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from ccphost.accounts.models import AgentAccess, ConsumedAssertion, IdentityProvider
from tests.accounts.conftest import HOST
from tests.accounts.idp import IDP_SSO_URL, TestIdentityProvider

User = get_user_model()
ALICE = {"uid": ["alice"], "mail": ["alice@example.com"], "givenName": ["Alice"], "sn": ["Agent"]}


@pytest.fixture
def identity_provider(instance, test_idp) -> IdentityProvider:
    return IdentityProvider.objects.create(instance=instance, metadata_xml=test_idp.metadata_xml)


@pytest.fixture
def alice(instance):
    user = User.objects.create_user("alice", password=None)
    AgentAccess.objects.create(instance=instance, user=user)
    return user


def start_sign_in(client, idp: TestIdentityProvider, next_url: str | None = None) -> tuple[str, str]:
    query = f"?{urlencode({'next': next_url})}" if next_url else ""
    response = client.get(f"/saml2/acme/login/{query}", HTTP_HOST=HOST)
    assert response.status_code == 302
    assert response["Location"].startswith(IDP_SSO_URL + "?")
    assert "&SigAlg=" in response["Location"] and "&Signature=" in response["Location"]  # A signed AuthnRequest.
    return idp.request_id_from(response["Location"])


def post_to_acs(client, saml_response: str, relay_state: str):
    return client.post("/saml2/acme/acs/", {"SAMLResponse": saml_response, "RelayState": relay_state}, HTTP_HOST=HOST)


def assert_refused(response, reason: str) -> None:
    assert 400 <= response.status_code < 500
    assert f'data-reason="{reason}"' in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session


def test_signed_assertion_signs_agent_in_and_lands_on_signed_in_page(client, identity_provider, alice, test_idp):
    request_id, relay_state = start_sign_in(client, test_idp)
    assert relay_state == reverse("ccp:signed_in", args=["acme"])

    response = post_to_acs(client, test_idp.answer(request_id, ALICE), relay_state)

    assert response.status_code == 302
    assert response["Location"] == "/connect/acme/login/done/"
    assert int(client.session["_auth_user_id"]) == alice.pk
    assert client.session["_auth_user_backend"] == "ccphost.accounts.backends.SamlAgentBackend"
    assert client.get("/connect/acme/login/done/", HTTP_HOST=HOST).wsgi_request.user == alice


def test_attributes_are_mapped_onto_the_agent(client, identity_provider, alice, test_idp):
    request_id, relay_state = start_sign_in(client, test_idp)
    post_to_acs(client, test_idp.answer(request_id, ALICE), relay_state)
    alice.refresh_from_db()
    assert (alice.email, alice.first_name, alice.last_name) == ("alice@example.com", "Alice", "Agent")


def test_admin_chosen_attribute_names_are_used(client, identity_provider, test_idp):
    identity_provider.username_attribute = "mail"
    identity_provider.first_name_attribute = ""
    identity_provider.create_users_on_first_sign_in = True
    identity_provider.save()
    request_id, relay_state = start_sign_in(client, test_idp)
    post_to_acs(client, test_idp.answer(request_id, ALICE), relay_state)
    user = User.objects.get(username="alice@example.com")
    assert (user.first_name, user.last_name) == ("", "Agent")


def test_unsigned_assertion_is_refused(client, identity_provider, alice, test_idp):
    request_id, relay_state = start_sign_in(client, test_idp)
    unsigned = test_idp.answer(request_id, ALICE, sign_assertion=False, sign_response=False)
    assert_refused(post_to_acs(client, unsigned, relay_state), "unsigned")


def test_signed_response_with_unsigned_assertion_is_refused(client, identity_provider, alice, test_idp):
    request_id, relay_state = start_sign_in(client, test_idp)
    response_only = test_idp.answer(request_id, ALICE, sign_assertion=False, sign_response=True)
    assert_refused(post_to_acs(client, response_only, relay_state), "unsigned")


def test_assertion_signed_by_another_key_is_refused(client, identity_provider, alice, test_idp, impostor_idp):
    request_id, relay_state = start_sign_in(client, test_idp)
    forged = impostor_idp.answer(request_id, ALICE)
    assert_refused(post_to_acs(client, forged, relay_state), "bad_signature")


def test_expired_assertion_is_refused(client, settings, identity_provider, alice, test_idp, short_lived_idp):
    settings.SAML_ACCEPTED_TIME_DIFF = 0
    request_id, relay_state = start_sign_in(client, test_idp)
    expired = short_lived_idp.answer(request_id, ALICE)
    time.sleep(2.1)  # Its NotOnOrAfter is now in the past.
    assert_refused(post_to_acs(client, expired, relay_state), "expired")
    assert not ConsumedAssertion.objects.exists()


def test_assertion_for_another_audience_is_refused(client, identity_provider, alice, test_idp):
    request_id, relay_state = start_sign_in(client, test_idp)
    elsewhere = test_idp.answer(request_id, ALICE, audience="https://other-sp.example.com/metadata/")
    assert_refused(post_to_acs(client, elsewhere, relay_state), "wrong_audience")


def test_replayed_assertion_is_refused(client, identity_provider, alice, test_idp):
    request_id, relay_state = start_sign_in(client, test_idp)
    saml_response = test_idp.answer(request_id, ALICE)
    assert post_to_acs(client, saml_response, relay_state).status_code == 302
    client.logout()

    assert_refused(post_to_acs(client, saml_response, relay_state), "replayed")
    assert ConsumedAssertion.objects.count() == 1


def test_response_to_a_request_never_made_is_refused(client, identity_provider, alice, test_idp):
    saml_response = test_idp.answer("id-never-asked-for", ALICE)
    assert_refused(post_to_acs(client, saml_response, "/connect/acme/login/done/"), "unsolicited")


def test_unknown_user_is_refused_when_instance_does_not_create_users(client, identity_provider, test_idp):
    request_id, relay_state = start_sign_in(client, test_idp)
    assert_refused(post_to_acs(client, test_idp.answer(request_id, ALICE), relay_state), "not_allowed")
    assert not User.objects.filter(username="alice").exists()
    assert not ConsumedAssertion.objects.exists()


def test_unknown_user_is_created_on_first_sign_in_when_allowed(client, identity_provider, instance, test_idp):
    identity_provider.create_users_on_first_sign_in = True
    identity_provider.save()
    request_id, relay_state = start_sign_in(client, test_idp)

    assert post_to_acs(client, test_idp.answer(request_id, ALICE), relay_state).status_code == 302

    user = User.objects.get(username="alice")
    assert not user.has_usable_password()
    assert AgentAccess.objects.get(user=user).instance == instance
    assert int(client.session["_auth_user_id"]) == user.pk


def test_existing_user_without_access_is_refused_even_when_creating_users(client, identity_provider, test_idp):
    """An IdP may not sign in as an account it does not own, such as an admin."""
    identity_provider.create_users_on_first_sign_in = True
    identity_provider.save()
    User.objects.create_superuser("root", "root@example.com", "pw-root-123")
    request_id, relay_state = start_sign_in(client, test_idp)
    answer = test_idp.answer(request_id, {"uid": ["root"]})
    assert_refused(post_to_acs(client, answer, relay_state), "not_allowed")
    assert not AgentAccess.objects.exists()


def test_disabled_identity_provider_signs_nobody_in(client, identity_provider, alice, test_idp):
    request_id, relay_state = start_sign_in(client, test_idp)
    identity_provider.enabled = False
    identity_provider.save()
    assert_refused(post_to_acs(client, test_idp.answer(request_id, ALICE), relay_state), "no_identity_provider")


def test_sign_in_returns_to_an_approved_origin(client, identity_provider, alice, test_idp):
    request_id, relay_state = start_sign_in(client, test_idp, next_url="https://crm.example.com/agent?x=1")
    assert relay_state == "https://crm.example.com/agent?x=1"
    response = post_to_acs(client, test_idp.answer(request_id, ALICE), relay_state)
    assert response["Location"] == "https://crm.example.com/agent?x=1"


def test_tampered_relay_state_is_refused_before_signing_in(client, identity_provider, alice, test_idp):
    request_id, _ = start_sign_in(client, test_idp)
    response = post_to_acs(client, test_idp.answer(request_id, ALICE), "https://evil.example.com/")
    assert_refused(response, "unsafe_redirect")


def test_sign_in_with_unsafe_next_is_refused(client, identity_provider):
    response = client.get("/saml2/acme/login/?next=//evil.example.com/", HTTP_HOST=HOST)
    assert response.status_code == 400
    assert 'data-reason="unsafe_redirect"' in response.content.decode()


def test_sp_metadata_names_the_instance_endpoints(client, instance):
    response = client.get("/saml2/acme/metadata/", HTTP_HOST=HOST)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'entityID="http://127.0.0.1:8000/saml2/acme/metadata/"' in body
    assert "http://127.0.0.1:8000/saml2/acme/acs/" in body
    assert 'WantAssertionsSigned="true"' in body


BOB = {"uid": ["bob"], "mail": ["bob@example.com"]}


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ({"sign_assertion": False, "sign_response": False}, "unsigned"),
        ({"sign_assertion": False, "sign_response": True}, "unsigned"),
        ({"audience": "https://other-sp.example.com/metadata/"}, "wrong_audience"),
        ({"forged": True}, "bad_signature"),
    ],
)
def test_refused_assertion_creates_no_user_even_when_instance_creates_users(
    client, identity_provider, test_idp, impostor_idp, variant, reason
):
    identity_provider.create_users_on_first_sign_in = True
    identity_provider.save()
    request_id, relay_state = start_sign_in(client, test_idp)
    signer = impostor_idp if variant.pop("forged", False) else test_idp
    assert_refused(post_to_acs(client, signer.answer(request_id, BOB, **variant), relay_state), reason)
    assert not User.objects.filter(username="bob").exists()
    assert not AgentAccess.objects.exists()
    assert not ConsumedAssertion.objects.exists()


def test_assertion_without_the_username_attribute_is_refused(client, identity_provider, test_idp):
    identity_provider.create_users_on_first_sign_in = True
    identity_provider.save()
    request_id, relay_state = start_sign_in(client, test_idp)
    answer = test_idp.answer(request_id, {"mail": ["nobody@example.com"]})
    assert_refused(post_to_acs(client, answer, relay_state), "missing_attribute")
    assert not User.objects.exists()


def test_name_id_is_the_username_when_no_attribute_is_configured(client, identity_provider, test_idp):
    identity_provider.username_attribute = ""
    identity_provider.create_users_on_first_sign_in = True
    identity_provider.save()
    request_id, relay_state = start_sign_in(client, test_idp)
    post_to_acs(client, test_idp.answer(request_id, ALICE, name_id="agent-007"), relay_state)
    assert User.objects.get(username="agent-007").email == "alice@example.com"


def test_answer_to_a_sign_in_started_in_another_browser_is_refused(client, identity_provider, alice, test_idp):
    # Login CSRF: the attacker starts a sign-in and makes the victim's browser post the answer.
    attacker = Client()
    request_id, relay_state = start_sign_in(attacker, test_idp)
    saml_response = test_idp.answer(request_id, ALICE)
    start_sign_in(client, test_idp)  # the victim's browser has a binding cookie of its own
    assert_refused(post_to_acs(client, saml_response, relay_state), "other_browser")
    assert ConsumedAssertion.objects.count() == 0
    # The browser that started it still signs in with that answer.
    assert post_to_acs(attacker, saml_response, relay_state).status_code == 302


@pytest.mark.parametrize(("secure", "signs_in"), [(True, False), (False, True)])
def test_answer_without_the_binding_cookie(client, settings, identity_provider, alice, test_idp, secure, signs_in):
    # Over HTTPS the cookie (SameSite=None; Secure) always comes back, so its absence refuses;
    # in development over plain HTTP a Lax cookie cannot ride the IdP's cross-site POST.
    settings.SESSION_COOKIE_SECURE = secure
    request_id, relay_state = start_sign_in(client, test_idp)
    cookie = client.cookies["ccphost_saml"]
    assert cookie["samesite"] == ("None" if secure else "Lax") and bool(cookie["secure"]) == secure
    assert cookie["httponly"] and cookie["path"] == "/saml2/acme/"
    del client.cookies["ccphost_saml"]
    response = post_to_acs(client, test_idp.answer(request_id, ALICE), relay_state)
    if signs_in:
        assert response.status_code == 302
    else:
        assert_refused(response, "other_browser")
