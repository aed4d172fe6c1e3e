"""Amazon-hosted CCPs: the agent page forwards each Streams agent::update over the agent's
events socket; ccphost records agent and contact events from them, relays them like those of
hosted instances, and refuses anything else with a reason."""

import copy
import uuid

import pytest
from asgiref.sync import sync_to_async

from ccphost.ccp import forwarding
from ccphost.engine import seed
from ccphost.engine.models import EngineEvent
from ccphost.instances.models import Instance
from ccphost.instances.services import Actor, approve_origins
from tests.test_event_stream import CRM, frames_until_quiet, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def amazon_connect_instance(name: str = "Acme on Amazon") -> Instance:
    """Instance "acme" whose CCP is Amazon's own."""
    return Instance.objects.create(
        alias="acme",
        name=name,
        kind=Instance.Kind.AMAZON_CONNECT,
        ccp_url="https://acme.my.connect.aws/ccp-v2/",
        aws_region="us-east-1",
        aws_instance_id=str(uuid.uuid4()),
    )


@pytest.fixture
def amazon(transactional_db, django_user_model):
    instance = amazon_connect_instance()
    approve_origins(instance, [CRM], Actor(source="command"))
    seed.seed_instance_defaults(instance)
    ada = seed.make_agent(instance, django_user_model.objects.create_user("ada", first_name="Ada"))
    bob = seed.make_agent(instance, django_user_model.objects.create_user("bob"))
    return {"instance": instance, "ada": ada, "bob": bob}


def update(state=("routable", "Available"), contacts=()) -> dict:
    return {
        "snapshot": {
            "state": {
                "agentStateARN": "arn:aws:connect:s",
                "type": state[0],
                "name": state[1],
                "startTimestamp": f"2026-11-25T10:00:0{len(state[1]) % 10}.000Z",
            },
            "nextState": None,
            "contacts": [
                {
                    "contactId": contact_id,
                    "initialContactId": contact_id,
                    "type": "voice",
                    "initiationMethod": "inbound",
                    "state": {"type": contact_state, "timestamp": "2026-11-25T10:00:05.000Z"},
                    "queue": {"queueARN": "arn:aws:connect:q", "name": "BasicQueue"},
                    "connections": [],
                }
                for contact_id, contact_state in contacts
            ],
        },
        "configuration": {
            "name": "Ada",
            "username": "ada",
            "agentARN": "arn:aws:connect:us-east-1:111122223333:instance/i/agent/ada",
            "routingProfile": {"name": "Basic", "routingProfileARN": "arn:rp", "queues": []},
        },
    }


def test_a_day_of_snapshots_becomes_agent_and_contact_events(amazon):
    ada = amazon["ada"]
    for data in [
        update(("offline", "Offline")),
        update(),
        update(("system", "PendingBusy"), [("c-1", "connecting")]),
        update(("system", "Busy"), [("c-1", "connected")]),
        update(("system", "Busy"), [("c-1", "connected")]),  # nothing changed: nothing recorded
        update(("not_routable", "AfterCallWork"), [("c-1", "ended")]),
        update(),
        update(("system", "PendingBusy"), [("c-2", "connecting")]),
        update(("error", "MissedCallAgent"), [("c-2", "missed")]),
        update(("error", "MissedCallAgent")),
    ]:
        forwarding.record_forwarded(ada.pk, data)
    events = [(e.stream, e.event_type, e.payload.get("ContactId")) for e in EngineEvent.objects.order_by("sequence")]
    assert events == [
        ("agent", "LOGIN", None),
        ("agent", "STATE_CHANGE", None),
        ("agent", "STATE_CHANGE", None),
        ("contact", "INITIATED", "c-1"),
        ("agent", "STATE_CHANGE", None),
        ("contact", "CONNECTED_TO_AGENT", "c-1"),
        ("agent", "STATE_CHANGE", None),
        ("contact", "DISCONNECTED", "c-1"),
        ("agent", "STATE_CHANGE", None),
        ("agent", "STATE_CHANGE", None),
        ("contact", "INITIATED", "c-2"),
        ("agent", "STATE_CHANGE", None),
        ("contact", "MISSED_BY_AGENT", "c-2"),
    ]
    login = EngineEvent.objects.order_by("sequence").first()
    assert login.agent_id == ada.pk
    assert login.payload["AgentARN"] == "arn:aws:connect:us-east-1:111122223333:instance/i/agent/ada"
    assert login.payload["CurrentAgentSnapshot"]["AgentStatus"]["Name"] == "Offline"
    assert login.payload["CurrentAgentSnapshot"]["Configuration"]["FirstName"] == "Ada"


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: d.pop("snapshot"), "snapshot must be an object"),
        (lambda d: d["snapshot"]["state"].update(type="dancing"), "snapshot.state.type"),
        (lambda d: d["snapshot"]["state"].update(name=""), "snapshot.state.name"),
        (lambda d: d["snapshot"].update(contacts="many"), "snapshot.contacts"),
        (lambda d: d["snapshot"].update(contacts=[{"contactId": "c"}] * 21), "at most 20"),
        (
            lambda d: d["snapshot"].update(
                contacts=[{"contactId": 7, "type": "voice", "state": {"type": "connected"}}]
            ),
            "contactId",
        ),
        (lambda d: d["snapshot"].update(contacts=[{"contactId": "c", "state": {"type": "x"}}]), "state.type"),
    ],
)
def test_bad_snapshots_are_refused_with_the_reason_and_record_nothing(amazon, mutate, words):
    data = copy.deepcopy(update())
    mutate(data)
    with pytest.raises(forwarding.ForwardError, match=words):
        forwarding.record_forwarded(amazon["ada"].pk, data)
    assert not EngineEvent.objects.exists()
    amazon["ada"].refresh_from_db()
    assert amazon["ada"].last_event_snapshot in (None, {})


async def test_the_agent_page_forwards_over_its_socket_and_sees_its_events(amazon):
    page = await subscribe("after=latest", user=amazon["ada"].user)
    assert (await page.receive_json_from())["type"] == "subscribed"
    other = await subscribe("after=latest", user=amazon["bob"].user)
    await other.receive_json_from()

    await page.send_json_to({"type": "forward", "agentData": update()})
    frames = await frames_until_quiet(page)
    forwarded = [f for f in frames if f["type"] == "forwarded"]
    assert len(forwarded) == 1 and len(forwarded[0]["recorded"]) == 1
    assert [f["eventType"] for f in frames if f["type"] == "event"] == ["LOGIN"]
    assert await frames_until_quiet(other) == []  # Bob never sees Ada's events

    await page.send_json_to({"type": "forward", "agentData": {"snapshot": {}}})
    error = await page.receive_json_from()
    assert error["type"] == "error" and "Not forwarded" in error["message"]
    await page.disconnect()
    await other.disconnect()


async def test_hosted_instances_do_not_take_forwarded_events(transactional_db, django_user_model):
    instance = await sync_to_async(Instance.objects.create)(alias="acme", name="Hosted")
    await sync_to_async(approve_origins)(instance, [CRM], Actor(source="command"))
    await sync_to_async(seed.seed_instance_defaults)(instance)
    user = await sync_to_async(django_user_model.objects.create_user)("ada")
    await sync_to_async(seed.make_agent)(instance, user)
    page = await subscribe("", user=user)
    await page.receive_json_from()
    await page.send_json_to({"type": "forward", "agentData": update()})
    frames = await frames_until_quiet(page)
    assert any("Only the agents of Amazon Connect instances" in f.get("message", "") for f in frames), frames
    await page.disconnect()
