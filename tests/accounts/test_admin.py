"""Admins upload identity-provider metadata, grant agent access and build federation login URLs."""

from django.core.files.uploadedfile import SimpleUploadedFile

from ccphost.accounts.models import IdentityProvider
from ccphost.instances.models import Instance
from tests.accounts.conftest import HOST
from tests.accounts.idp import IDP_ENTITY_ID, IDP_SLO_URL, IDP_SSO_URL

ADD_URL = "/admin/accounts/identityprovider/add/"
CONNECT_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def form_data(instance, **overrides):
    data = {
        "instance": instance.pk,
        "enabled": "on",
        "metadata_xml": "",
        "username_attribute": "uid",
        "email_attribute": "mail",
        "first_name_attribute": "givenName",
        "last_name_attribute": "sn",
    }
    data.update(overrides)
    return data


def test_uploaded_metadata_file_configures_the_identity_provider(client, admin_user, instance, test_idp):
    client.force_login(admin_user)
    upload = SimpleUploadedFile("idp.xml", test_idp.metadata_xml.encode(), content_type="application/xml")
    response = client.post(ADD_URL, form_data(instance, metadata_file=upload), HTTP_HOST=HOST)
    assert response.status_code == 302, response.content.decode()[:2000]
    idp = IdentityProvider.objects.get(instance=instance)
    assert (idp.entity_id, idp.sso_url, idp.slo_url) == (IDP_ENTITY_ID, IDP_SSO_URL, IDP_SLO_URL)


def test_metadata_that_is_not_an_identity_provider_is_refused(client, admin_user, instance):
    client.force_login(admin_user)
    sp_metadata = client.get("/saml2/acme/metadata/", HTTP_HOST=HOST).content.decode()
    for bad in ["<not-xml", sp_metadata]:
        response = client.post(ADD_URL, form_data(instance, metadata_xml=bad), HTTP_HOST=HOST)
        assert response.status_code == 200
        assert "identity provider" in response.content.decode() or "could not be read" in response.content.decode()
    assert not IdentityProvider.objects.exists()


def test_change_page_links_sp_metadata_and_previews_federation_url(client, admin_user, test_idp, db):
    connect = Instance.objects.create(
        alias="aws",
        name="AWS",
        kind=Instance.Kind.AMAZON_CONNECT,
        ccp_url="https://aws-demo.my.connect.aws/ccp-v2/",
        aws_region="us-west-2",
        aws_instance_id=CONNECT_ID,
    )
    idp = IdentityProvider.objects.create(instance=connect, metadata_xml=test_idp.metadata_xml)
    client.force_login(admin_user)
    page = client.get(f"/admin/accounts/identityprovider/{idp.pk}/change/", HTTP_HOST=HOST).content.decode()
    assert "/saml2/aws/metadata/" in page
    assert "us-west-2.console.aws.amazon.com%2Fconnect%2Ffederate%2F" + CONNECT_ID in page


def test_action_sets_the_connect_instance_login_url(client, admin_user, test_idp, instance, db):
    connect = Instance.objects.create(
        alias="aws",
        name="AWS",
        kind=Instance.Kind.AMAZON_CONNECT,
        ccp_url="https://aws-demo.my.connect.aws/ccp-v2/",
        aws_region="us-west-2",
        aws_instance_id=CONNECT_ID,
    )
    federated = IdentityProvider.objects.create(instance=connect, metadata_xml=test_idp.metadata_xml)
    hosted = IdentityProvider.objects.create(instance=instance, metadata_xml=test_idp.metadata_xml)
    client.force_login(admin_user)
    response = client.post(
        "/admin/accounts/identityprovider/",
        {"action": "set_federation_login_url", "_selected_action": [federated.pk, hosted.pk]},
        HTTP_HOST=HOST,
        follow=True,
    )
    connect.refresh_from_db()
    instance.refresh_from_db()
    assert connect.login_url.startswith(IDP_SSO_URL + "?RelayState=https%3A%2F%2Fus-west-2.console.aws.amazon.com")
    assert instance.login_url == ""
    assert "Only Amazon Connect instances" in response.content.decode()
