import pytest
from saml2.metadata import entity_descriptor

from ccphost.accounts.saml import sp_config, sp_urls
from ccphost.instances.models import ApprovedOrigin, Instance
from tests.accounts.idp import TestIdentityProvider, make_idp

HOST = "127.0.0.1:8000"
CRM_ORIGIN = "https://crm.example.com"


def _sp_parts() -> tuple[str, str, str]:
    instance = Instance(alias="acme", name="Acme Support")
    urls = sp_urls(instance)
    metadata = str(entity_descriptor(sp_config(instance, None)))
    return metadata, urls["entity_id"], urls["acs"]


@pytest.fixture(scope="session")
def test_idp() -> TestIdentityProvider:
    return make_idp(*_sp_parts())


@pytest.fixture(scope="session")
def impostor_idp() -> TestIdentityProvider:
    """Same entity id as test_idp, but another key: its signatures must not verify."""
    return make_idp(*_sp_parts(), key_name="impostor")


@pytest.fixture(scope="session")
def short_lived_idp(test_idp) -> TestIdentityProvider:
    """test_idp's twin (same key) whose assertions are valid for one second."""
    return make_idp(*_sp_parts(), key_pair=test_idp.key_pair, lifetime_seconds=1)


@pytest.fixture
def instance(db) -> Instance:
    acme = Instance.objects.create(alias="acme", name="Acme Support")
    ApprovedOrigin.objects.create(instance=acme, origin=CRM_ORIGIN)
    return acme
