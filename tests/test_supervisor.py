"""The supervisor board and its socket."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.test import Client

from ccphost.asgi import application
from ccphost.ccp.supervisor import supervisor_board
from ccphost.engine import network, seed, services
from ccphost.engine.models import AgentState, Queue
from ccphost.instances.models import Instance

OWN = b"http://127.0.0.1:8000"


@pytest.fixture
def center(transactional_db, django_user_model):
    instance = Instance.objects.create(alias="acme", name="Acme")
    seed.seed_instance_defaults(instance)
    ada = seed.make_agent(instance, django_user_model.objects.create_user("ada", first_name="Ada"))
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    boss.user_permissions.add(Permission.objects.get(codename="view_engineevent"))
    return {"instance": instance, "ada": ada, "boss": boss}


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def waiting_call(instance) -> None:
    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    network.start_inbound_contact(instance, queue, "+15555550123", {})


def test_board_counts_waiting_contacts_and_agent_states(center):
    waiting_call(center["instance"])
    board = supervisor_board(center["instance"].pk)
    assert board["queues"][0]["waiting"] == 1 and board["queues"][0]["oldestWaitSince"]
    assert board["agents"][0]["stateName"] == "Offline"
    services.put_agent_state(center["ada"], AgentState.objects.get(instance=center["instance"], name="Available"))
    board = supervisor_board(center["instance"].pk)
    assert board["queues"][0]["waiting"] == 0, "the waiting call went to ada the moment she became Available"
    assert board["agents"][0]["contacts"] == 1


async def connect_as(user) -> WebsocketCommunicator:
    headers = [(b"origin", OWN), (b"host", b"127.0.0.1:8000"), (b"cookie", await sync_to_async(session_cookie)(user))]
    communicator = WebsocketCommunicator(application, "/ws/supervisor/acme/", headers=headers)
    assert (await communicator.connect())[0]
    return communicator


@pytest.mark.django_db(transaction=True)
async def test_socket_sends_a_board_then_a_new_one_after_changes(center):
    socket = await connect_as(center["boss"])
    first = await socket.receive_json_from()
    assert first["type"] == "board" and first["queues"][0]["waiting"] == 0
    await sync_to_async(waiting_call)(center["instance"])
    update = await socket.receive_json_from(timeout=3)
    assert update["queues"][0]["waiting"] == 1
    assert await socket.receive_nothing(timeout=0.5), "events of one change give one board"
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_agents_cannot_supervise(center):
    socket = await connect_as(center["ada"].user)
    assert (await socket.receive_json_from())["type"] == "error"
    assert (await socket.receive_output())["code"] == 4403


def test_supervisor_page_needs_the_permission(center):
    client = Client(HTTP_HOST="127.0.0.1:8000")
    client.force_login(center["ada"].user)
    assert client.get("/connect/acme/supervisor/").status_code == 403
    client.force_login(center["boss"])
    assert client.get("/connect/acme/supervisor/").status_code == 200
