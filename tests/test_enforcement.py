"""Layers one and two of origin enforcement: the CCP page's CSP and the WebSocket check."""

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from ccphost.asgi import application
from ccphost.instances.models import Instance
from ccphost.instances.services import Actor, approve_origins, revoke_origins

COMMAND = Actor(source="command")
OWN = "http://127.0.0.1:8000"


@pytest.fixture
def client() -> Client:
    return Client(HTTP_HOST="127.0.0.1:8000")


def csp(response) -> dict[str, str]:
    directives = (part.strip() for part in response["Content-Security-Policy"].split(";"))
    return dict(d.split(" ", 1) if " " in d else (d, "") for d in directives if d)


@pytest.mark.parametrize(
    ("origins", "expected"),
    [
        ([], "'self'"),
        (["https://crm.example.com"], "'self' https://crm.example.com"),
        (
            ["https://crm.example.com:8443", "https://b.example", "https://a.example"],
            "'self' https://a.example https://b.example https://crm.example.com:8443",
        ),
    ],
)
def test_ccp_page_frame_ancestors_are_exactly_the_approved_origins(instance, client, origins, expected):
    if origins:
        approve_origins(instance, origins, COMMAND)
    response = client.get("/connect/acme/ccp-v2/")
    assert response.status_code == 200
    assert csp(response)["frame-ancestors"] == expected
    assert "X-Frame-Options" not in response


@pytest.mark.parametrize("path", ["/", "/connect/acme/agent/", "/connect/acme/login/", "/admin/login/"])
def test_every_other_page_refuses_to_be_framed(instance, client, path):
    approve_origins(instance, ["https://crm.example.com"], COMMAND)
    response = client.get(path)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert csp(response)["frame-ancestors"] == "'none'"


def test_unknown_instance_is_404(db, client):
    assert client.get("/connect/nobody/ccp-v2/").status_code == 404
    assert client.get("/connect/nobody/agent/").status_code == 404
    assert client.get("/connect/nobody/login/").status_code == 404


def test_removed_origin_leaves_the_frame_ancestors_at_once(instance, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        approve_origins(instance, ["https://crm.example.com"], COMMAND)
    assert "https://crm.example.com" in client.get("/connect/acme/ccp-v2/")["Content-Security-Policy"]
    with django_capture_on_commit_callbacks(execute=True):
        revoke_origins(instance, ["https://crm.example.com"], COMMAND)
    assert "https://crm.example.com" not in client.get("/connect/acme/ccp-v2/")["Content-Security-Policy"]


def test_agent_page_renders_init_options(instance, client):
    instance.login_url = "https://idp.example.com/sso"
    instance.disable_ringtone = True
    instance.save()
    body = client.get("/connect/acme/agent/").content.decode()
    assert '"ccpUrl": "http://127.0.0.1:8000/connect/acme/ccp-v2/"' in body
    assert '"loginUrl": "https://idp.example.com/sso"' in body
    assert '"disableRingtone": true' in body


async def handshake(origin: str | None, path: str = "/ws/ccp/acme/") -> tuple[bool, int | None]:
    headers = [(b"host", b"127.0.0.1:8000")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    await communicator.disconnect()
    return connected, code


@pytest.fixture
def approved_instance(transactional_db) -> Instance:
    instance = Instance.objects.create(alias="acme", name="Acme")
    approve_origins(instance, ["https://crm.example.com"], COMMAND)
    return instance


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://crm.example.com", True),
        ("https://CRM.example.com:443", True),
        (OWN, True),
        ("https://evil.example.com", False),
        ("https://crm.example.com:8443", False),
        ("http://crm.example.com", False),
        ("null", False),
        (None, False),
    ],
)
async def test_websocket_handshake_checks_origin(approved_instance, origin, allowed):
    connected, _ = await handshake(origin)
    assert connected is allowed


@pytest.mark.django_db(transaction=True)
async def test_websocket_origin_of_another_instance_is_refused(approved_instance):
    from asgiref.sync import sync_to_async

    await sync_to_async(Instance.objects.create)(alias="other", name="Other")
    assert (await handshake("https://crm.example.com", "/ws/ccp/other/"))[0] is False


@pytest.mark.django_db(transaction=True)
async def test_websocket_refused_once_origin_removed(approved_instance):
    from asgiref.sync import sync_to_async

    assert (await handshake("https://crm.example.com"))[0] is True
    await sync_to_async(revoke_origins)(approved_instance, ["https://crm.example.com"], COMMAND)
    assert (await handshake("https://crm.example.com"))[0] is False
