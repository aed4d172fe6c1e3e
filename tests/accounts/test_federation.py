"""The login URL of Amazon Connect instances federated through a SAML identity provider."""

from urllib.parse import parse_qs, urlsplit

import pytest

from ccphost.accounts.federation import FederationUrlError, build_federation_login_url

INSTANCE_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def test_relay_state_sends_the_agent_to_the_instance_ccp():
    url = build_federation_login_url("https://idp.example.com/app/sso/saml?app=connect", "eu-west-2", INSTANCE_ID)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "idp.example.com", "/app/sso/saml")
    query = parse_qs(parts.query)
    assert query["app"] == ["connect"]
    assert query["RelayState"] == [
        f"https://eu-west-2.console.aws.amazon.com/connect/federate/{INSTANCE_ID}?destination=%2Fccp-v2"
    ]


def test_an_existing_relay_state_is_replaced():
    url = build_federation_login_url(
        "https://idp.example.com/sso?RelayState=https://evil.example.com", "us-east-1", INSTANCE_ID
    )
    assert parse_qs(urlsplit(url).query)["RelayState"][0].startswith("https://us-east-1.console.aws.amazon.com/")


def test_govcloud_region_is_accepted():
    assert "us-gov-west-1.console.aws.amazon.com" in build_federation_login_url(
        "https://idp.example.com/sso", "us-gov-west-1", INSTANCE_ID
    )


@pytest.mark.parametrize("region", ["", "us-east", "US-EAST-1", "us-east-1.evil.com", "us-east-1/", "x"])
def test_bad_region_is_refused(region):
    with pytest.raises(FederationUrlError, match="region"):
        build_federation_login_url("https://idp.example.com/sso", region, INSTANCE_ID)


@pytest.mark.parametrize(
    "instance_id", ["", "not-a-uuid", INSTANCE_ID[:-1], f"{INSTANCE_ID}/../x", INSTANCE_ID.replace("-", "")]
)
def test_bad_instance_id_is_refused(instance_id):
    with pytest.raises(FederationUrlError):
        build_federation_login_url("https://idp.example.com/sso", "us-east-1", instance_id)


@pytest.mark.parametrize(
    "sso_url",
    [
        "http://idp.example.com/sso",
        "javascript:alert(1)",
        "idp.example.com/sso",
        "https:///sso",
        "https://u:p@idp.example.com/",
        "",
    ],
)
def test_non_https_or_odd_sso_url_is_refused(sso_url):
    with pytest.raises(FederationUrlError, match="SSO URL"):
        build_federation_login_url(sso_url, "us-east-1", INSTANCE_ID)


def test_admin_form_builds_the_login_url_of_a_connect_instance(db):
    from ccphost.accounts.forms import FederationLoginUrlForm
    from ccphost.instances.models import Instance

    connect = Instance(alias="aws", name="AWS", kind=Instance.Kind.AMAZON_CONNECT, aws_region="ap-southeast-2")
    connect.aws_instance_id = INSTANCE_ID
    form = FederationLoginUrlForm({"idp_sso_url": "https://idp.example.com/sso"}, instance=connect)
    assert form.is_valid(), form.errors
    assert "ap-southeast-2.console.aws.amazon.com" in form.cleaned_data["login_url"]

    hosted = Instance(alias="acme", name="Acme")
    assert not FederationLoginUrlForm({"idp_sso_url": "https://idp.example.com/sso"}, instance=hosted).is_valid()
    insecure = FederationLoginUrlForm({"idp_sso_url": "http://idp.example.com/sso"}, instance=connect)
    assert not insecure.is_valid()
