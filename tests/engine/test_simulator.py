"""The simulator API (bearer token per instance, JSON errors) and `manage.py simulate`."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from ccphost.engine.core import engine_settings
from ccphost.engine.models import Contact

pytestmark = pytest.mark.django_db

BASE = "/api/v1/instances/acme"


@pytest.fixture
def token(center):
    return engine_settings(center).simulator_token


def post(client, path, body=None, token=None, raw=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else json.dumps(body or {})
    return client.post(BASE + path, data=data, content_type="application/json", headers=headers)


def get(client, path, token):
    return client.get(BASE + path, headers={"Authorization": f"Bearer {token}"})


def test_call_is_routed_and_scriptable(client, center, ada, token):
    created = post(
        client, "/calls", {"queue": "BasicQueue", "from": "+15555550123", "attributes": {"plan": "gold"}}, token
    )
    assert created.status_code == 201, created.content
    contact = created.json()
    assert (contact["agent"], contact["state"], contact["attributes"]) == ("ada", "connecting", {"plan": "gold"})
    snapshot = get(client, "/agents/ada/snapshot", token).json()
    assert snapshot["snapshot"]["contacts"][0]["contactId"] == contact["contactId"]
    path = f"/contacts/{contact['contactId']}"
    hung_up = post(client, path + "/hangup", token=token)
    assert hung_up.json()["state"] == "ended"
    again = post(client, path + "/hangup", token=token)
    assert again.status_code == 409 and again.json()["error"]["type"] == "InvalidStateException"
    assert get(client, path, token).json()["state"] == "ended"


def test_callback_and_digits(client, center, ada, token):
    callback = post(client, "/callbacks", {"queue": "BasicQueue", "number": "+15555550188"}, token).json()
    assert (callback["type"], callback["state"]) == ("queue_callback", "incoming")
    call = post(client, "/calls", {"queue": "BasicQueue", "from": "+15555550199"}, token).json()
    digits = f"/contacts/{call['contactId']}/digits"
    assert post(client, digits, {"digits": "12#"}, token).json()["customerDigits"] == "12#"  # waiting in queue
    bad = post(client, digits, {"digits": "12a"}, token)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "InvalidParameterException"
    missing = post(client, digits, {}, token)
    assert missing.status_code == 400
    post(client, f"/contacts/{call['contactId']}/hangup", token=token)
    ended = post(client, digits, {"digits": "1"}, token)
    assert ended.status_code == 409 and ended.json()["error"]["type"] == "InvalidStateException"


def test_event_log_pages_by_sequence(client, center, ada, token):
    post(client, "/calls", {"queue": "BasicQueue", "from": "+15555550123"}, token)
    events = get(client, "/events?after=0&limit=500", token).json()["events"]
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert {"INITIATED", "QUEUED", "STATE_CHANGE"} <= {e["eventType"] for e in events}
    later = get(client, f"/events?after={sequences[-2]}", token).json()["events"]
    assert [e["sequence"] for e in later] == [sequences[-1]]


def test_event_log_cursor_walks_one_stream_page_by_page(client, center, ada, token):
    post(client, "/calls", {"queue": "BasicQueue", "from": "+15555550123"}, token)
    seen, after = [], 0
    while True:
        page = get(client, f"/events?after={after}&limit=2&stream=contact", token).json()
        if not page["events"]:
            assert page["nextAfter"] == after
            break
        seen += page["events"]
        after = page["nextAfter"]
    assert seen and {e["stream"] for e in seen} == {"contact"}
    assert get(client, "/events?stream=bogus", token).status_code == 400


def test_timers_run_on_request(client, center, token):
    assert post(client, "/timers/run", token=token).json() == {"fired": 0}


def test_without_token_is_401(client, center):
    response = post(client, "/calls", {"queue": "BasicQueue", "from": "+15555550123"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "UnauthorizedException"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Contact.objects.exists()


def test_token_of_another_instance_is_401(client, center, token):
    from ccphost.engine import seed
    from ccphost.instances.models import Instance

    other = Instance.objects.create(alias="other", name="Other")
    seed.seed_instance_defaults(other)
    response = client.post(
        "/api/v1/instances/other/calls",
        data=json.dumps({"queue": "BasicQueue", "from": "+15555550123"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ({"from": "+15555550123"}, 400, "InvalidParameterException"),
        ({"queue": "Nope", "from": "+15555550123"}, 404, "ResourceNotFoundException"),
        ({"queue": "BasicQueue", "from": "call me"}, 400, "InvalidParameterException"),
        ({"queue": "BasicQueue", "from": "+15555550123", "attributes": ["x"]}, 400, "InvalidParameterException"),
        ({"queue": "BasicQueue", "from": "+15555550123", "attributes": {"bad key": "x"}}, 400, "InvalidParameter"),
        ({"queue": 7, "from": "+15555550123"}, 400, "InvalidParameterException"),
    ],
)
def test_bad_bodies_are_4xx_json(client, center, token, body, status, error_type):
    response = post(client, "/calls", body, token)
    assert response.status_code == status
    assert response.json()["error"]["type"].startswith(error_type)
    assert not Contact.objects.exists()


@pytest.mark.parametrize(("raw", "status"), [("{not json", 400), ("[1]", 400), ('{"pad": "' + "x" * 70000 + '"}', 413)])
def test_malformed_bodies(client, center, token, raw, status):
    response = post(client, "/calls", token=token, raw=raw)
    assert response.status_code == status
    assert "error" in response.json()


def test_unknown_contact_and_instance_and_method(client, center, token):
    missing = get(client, "/contacts/00000000-0000-0000-0000-000000000000", token)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "ResourceNotFoundException"
    assert client.get("/api/v1/instances/nope/calls").status_code in (404, 405)
    wrong_method = get(client, "/calls", token)
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    assert get(client, "/agents/nobody/snapshot", token).status_code == 404


def run_simulate(*args):
    out = StringIO()
    call_command("simulate", *args, stdout=out)
    return out.getvalue()


def test_simulate_command_call_digits_hangup(center, ada):
    contact = json.loads(run_simulate("call", "acme", "--from", "+15555550100", "--attr", "order=42"))
    assert (contact["agent"], contact["attributes"]) == ("ada", {"order": "42"})
    from ccphost.engine import services

    services.accept_contact(ada, contact["contactId"])
    assert json.loads(run_simulate("digits", "acme", contact["contactId"], "9#"))["customerDigits"] == "9#"
    assert contact["contactId"] in run_simulate("contacts", "acme")
    assert json.loads(run_simulate("hangup", "acme", contact["contactId"]))["state"] == "ended"
    assert json.loads(run_simulate("callback", "acme", "--number", "+15555550101"))["type"] == "queue_callback"
    assert run_simulate("token", "acme").strip() == engine_settings(center).simulator_token


@pytest.mark.parametrize(
    "args",
    [
        ("call", "nope"),
        ("call", "acme", "--queue", "Nope"),
        ("call", "acme", "--from", "hello"),
        ("call", "acme", "--attr", "novalue"),
        ("hangup", "acme", "not-a-contact"),
        ("hangup", "acme", "00000000-0000-0000-0000-000000000000"),
        ("digits", "acme", "00000000-0000-0000-0000-000000000000", "abc"),
    ],
)
def test_simulate_command_bad_input(center, args):
    with pytest.raises(CommandError):
        run_simulate(*args)
    assert not Contact.objects.exists()
