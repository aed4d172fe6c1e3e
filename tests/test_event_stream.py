"""/ws/events/<alias>/: who sees which events, replay after a sequence number, live relay."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.test import Client

from ccphost.asgi import application
from ccphost.ccp.event_stream import make_events_token
from ccphost.engine import network, seed, services
from ccphost.engine.models import AgentState, EngineEvent, Queue
from ccphost.instances.models import Instance
from ccphost.instances.services import Actor, approve_origins

CRM = "https://crm.example.com"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def center(transactional_db, django_user_model):
    instance = Instance.objects.create(alias="acme", name="Acme")
    approve_origins(instance, [CRM], Actor(source="command"))
    seed.seed_instance_defaults(instance)
    ada = seed.make_agent(instance, django_user_model.objects.create_user("ada"))
    bob = seed.make_agent(instance, django_user_model.objects.create_user("bob"))
    available = AgentState.objects.get(instance=instance, name="Available")
    return {"instance": instance, "ada": ada, "bob": bob, "available": available}


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def subscribe(query: str = "", user=None, origin: str = CRM) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"127.0.0.1:8000")]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(cookie_for)(user)))
    communicator = WebsocketCommunicator(application, f"/ws/events/acme/?{query}", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def frames_until_quiet(communicator: WebsocketCommunicator, timeout: float = 0.5) -> list[dict]:
    frames = []
    while not await communicator.receive_nothing(timeout=timeout):
        frames.append(await communicator.receive_json_from())
    return frames


def call_ada(center) -> None:
    services.put_agent_state(center["ada"], center["available"])
    queue = Queue.objects.get(instance=center["instance"], name=seed.BASIC_QUEUE)
    network.start_inbound_contact(center["instance"], queue, "+15555550123", {"account": "ACME-7"})


async def test_agent_page_sees_only_its_own_events_with_contact_attributes(center):
    ada_page = await subscribe(f"token={make_events_token(center['ada'])}")
    bob_page = await subscribe(f"token={make_events_token(center['bob'])}")
    assert (await ada_page.receive_json_from())["type"] == "subscribed"
    assert (await bob_page.receive_json_from())["type"] == "subscribed"
    await sync_to_async(call_ada)(center)

    ada_events = await frames_until_quiet(ada_page)
    assert ada_events, "ada's page receives her events"
    assert all(e["record"].get("AgentARN", center["ada"].arn) == center["ada"].arn for e in ada_events)
    offered = [e for e in ada_events if e["stream"] == "agent" and e["record"]["CurrentAgentSnapshot"]["Contacts"]]
    assert offered, "the incoming contact reaches the screen-pop before it is accepted"
    contact_id = offered[0]["record"]["CurrentAgentSnapshot"]["Contacts"][0]["ContactId"]
    assert offered[0]["attributes"][contact_id] == {"account": "ACME-7"}
    assert await frames_until_quiet(bob_page) == []
    await ada_page.disconnect()
    await bob_page.disconnect()


async def test_reconnect_after_seq_replays_exactly_the_missed_events_in_order(center):
    page = await subscribe(f"token={make_events_token(center['ada'])}")
    await page.receive_json_from()
    await sync_to_async(services.put_agent_state)(center["ada"], center["available"])
    first = await frames_until_quiet(page)
    last_seen = first[-1]["seq"]
    await page.disconnect()

    await sync_to_async(call_ada)(center)  # happens while the page is away
    expected = await sync_to_async(
        lambda: list(
            EngineEvent.objects.filter(agent=center["ada"], sequence__gt=last_seen)
            .order_by("sequence")
            .values_list("sequence", flat=True)
        )
    )()
    page = await subscribe(f"token={make_events_token(center['ada'])}&after={last_seen}")
    assert (await page.receive_json_from())["after"] == last_seen
    replayed = [e["seq"] for e in await frames_until_quiet(page)]
    assert replayed == expected
    assert len(replayed) == len(set(replayed))
    await page.disconnect()


async def test_staff_with_permission_sees_the_whole_instance(center, django_user_model):
    boss = await sync_to_async(django_user_model.objects.create_user)("boss", is_staff=True)
    perm = await sync_to_async(Permission.objects.get)(codename="view_engineevent")
    await sync_to_async(boss.user_permissions.add)(perm)
    page = await subscribe("scope=instance", user=boss)
    assert (await page.receive_json_from())["scope"] == "instance"
    await sync_to_async(call_ada)(center)
    streams = {e["stream"] for e in await frames_until_quiet(page)}
    assert streams == {"agent", "contact"}
    await page.disconnect()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("token=forged", "invalid or expired"),
        ("", "Sign in"),
        ("after=-1", "whole number"),
    ],
)
async def test_bad_subscriptions_are_refused_with_a_reason(center, query, reason):
    page = await subscribe(query)
    frame = await page.receive_json_from()
    assert frame["type"] == "error"
    assert reason in frame["message"]
    assert (await page.receive_output())["type"] == "websocket.close"


async def test_agent_without_permission_cannot_see_the_instance(center):
    page = await subscribe("scope=instance", user=center["ada"].user)
    frame = await page.receive_json_from()
    assert frame["type"] == "error"


async def test_unapproved_origin_is_refused(center):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/events/acme/?token={make_events_token(center['ada'])}",
        headers=[(b"origin", b"https://evil.example.com"), (b"host", b"127.0.0.1:8000")],
    )
    connected, _ = await communicator.connect()
    assert not connected


def test_events_token_endpoint_needs_an_agent_session(center, django_user_model):
    client = Client(HTTP_HOST="127.0.0.1:8000")
    assert client.get("/connect/acme/events-token/").status_code == 403
    client.force_login(center["ada"].user)
    body = client.get("/connect/acme/events-token/").json()
    assert body["path"] == "/ws/events/acme/" and body["token"]
    client.force_login(django_user_model.objects.create_user("stranger"))
    assert client.get("/connect/acme/events-token/").status_code == 403
