"""The CCP API dispatch: every method reaches its service; bad params name the field."""

import pytest

from ccphost.engine.api import METHODS, handle_api_request
from ccphost.engine.core import EngineError
from ccphost.engine.models import AgentState, QuickConnect
from ccphost.engine.snapshots import snapshot_frame
from tests.engine.conftest import assert_refused, call, fresh, leg_of

pytestmark = pytest.mark.django_db

NO_ID = "00000000-0000-0000-0000-000000000000"
WIRE_METHODS = {
    "putAgentState",
    "updateAgentConfiguration",
    "createOutboundContact",
    "getEndpoints",
    "acceptContact",
    "rejectContact",
    "completeContact",
    "clearContact",
    "conferenceConnections",
    "destroyContact",
    "notifyContactIssue",
    "createAdditionalConnection",
    "toggleActiveConnections",
    "destroyConnection",
    "holdConnection",
    "resumeConnection",
    "muteParticipant",
    "unmuteParticipant",
    "sendDigits",
}


def test_every_wire_protocol_method_is_handled():
    assert set(METHODS) == WIRE_METHODS


def test_a_call_through_the_api(center, ada, basic_queue):
    contact = call(center, basic_queue)
    contact_id = str(contact.contact_id)
    handle_api_request(ada, "acceptContact", {"contactId": contact_id})
    customer = contact.connections.get(initial=True)
    own = leg_of(contact, ada)
    for method in ("holdConnection", "resumeConnection", "muteParticipant", "unmuteParticipant"):
        connection = own if "mute" in method.lower() else customer
        handle_api_request(ada, method, {"contactId": contact_id, "connectionId": str(connection.connection_id)})
    handle_api_request(
        ada, "sendDigits", {"contactId": contact_id, "connectionId": str(customer.connection_id), "digits": "1"}
    )
    handle_api_request(ada, "notifyContactIssue", {"contactId": contact_id, "issueCode": "noise"})
    handle_api_request(ada, "destroyContact", {"contactId": contact_id})
    handle_api_request(ada, "clearContact", {"contactId": contact_id})
    assert fresh(ada).state_name == "Available"


def test_state_by_arn_from_the_configuration(center, ada):
    configuration = snapshot_frame(ada.pk)["configuration"]
    lunch = next(s for s in configuration["agentStates"] if s["name"] == "Lunch")
    handle_api_request(ada, "putAgentState", {"state": lunch, "enqueueNextState": False})
    assert fresh(ada).state_name == "Lunch"


def test_outbound_call_to_a_quick_connect_and_a_number(center, ada):
    desk = QuickConnect.objects.get(instance=center, name="Supervisor desk")
    data = handle_api_request(ada, "createOutboundContact", {"endpoint": {"endpointARN": desk.arn}})
    assert fresh(ada).state_name == "CallingCustomer"
    handle_api_request(ada, "destroyContact", data)
    handle_api_request(ada, "clearContact", data)
    endpoint = {"type": "phone_number", "phoneNumber": "+15555550111", "name": "Customer"}
    handle_api_request(ada, "createOutboundContact", {"endpoint": endpoint, "queueARN": None})


def test_get_endpoints_pages(center, ada):
    first = handle_api_request(ada, "getEndpoints", {"queueARNs": [], "maxResults": 2})
    assert len(first["endpoints"]) == 2 and first["nextToken"] == "2"
    rest = handle_api_request(ada, "getEndpoints", {"queueARNs": [], "nextToken": "2"})
    assert len(rest["endpoints"]) == 1 and rest["nextToken"] is None
    assert set(rest["endpoints"][0]) == {
        "endpointARN",
        "endpointId",
        "type",
        "name",
        "phoneNumber",
        "agentLogin",
        "queue",
    }


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("putAgentState", {}, "state"),
        ("putAgentState", {"state": {"name": "Lunch"}, "enqueueNextState": "yes"}, "enqueueNextState"),
        ("updateAgentConfiguration", {"configuration": "x"}, "configuration"),
        ("updateAgentConfiguration", {"configuration": {"softphoneEnabled": "no"}}, "softphoneEnabled"),
        ("updateAgentConfiguration", {"configuration": {"agentPreferences": {"LANGUAGE": "klingon"}}}, "LANGUAGE"),
        ("createOutboundContact", {}, "endpoint"),
        ("createOutboundContact", {"endpoint": {"phoneNumber": "+15555550111"}, "queueARN": 5}, "queueARN"),
        ("getEndpoints", {"queueARNs": "all"}, "queueARNs"),
        ("getEndpoints", {"maxResults": 0}, "maxResults"),
        ("getEndpoints", {"nextToken": "abc"}, "nextToken"),
        ("getEndpoints", {"nextToken": "²"}, "nextToken"),
        ("getEndpoints", {"nextToken": "9" * 40}, "nextToken"),
        ("acceptContact", {"contactId": "'; drop table"}, "contactId"),
        ("rejectContact", {}, "contactId"),
        ("holdConnection", {"contactId": NO_ID}, "connectionId"),
        ("sendDigits", {"contactId": NO_ID, "connectionId": NO_ID}, "digits"),
        ("notifyContactIssue", {"contactId": NO_ID}, "issueCode"),
        ("acceptContact", [], "params"),
    ],
)
def test_bad_params_name_the_field(center, ada, method, params, field):
    error = assert_refused(center, handle_api_request, "InvalidParameterException", ada, method, params)
    assert error.message.startswith(field) or field in error.message


def test_unknown_method_and_unknown_state(center, ada):
    with pytest.raises(EngineError) as unknown:
        handle_api_request(ada, "dropDatabase", {})
    assert unknown.value.type == "UnknownMethodException"
    assert_refused(
        center, handle_api_request, "ResourceNotFoundException", ada, "putAgentState", {"state": {"name": "Nap"}}
    )
    assert_refused(
        center,
        handle_api_request,
        "BadEndpointException",
        ada,
        "createOutboundContact",
        {"endpoint": {"type": "agent", "endpointARN": "arn:aws:connect:x/agent/nobody"}},
    )


def test_endpoints_limited_to_queues(center, ada, basic_queue):
    from ccphost.engine.models import Queue

    billing = Queue.objects.create(instance=center, name="Billing")
    only_billing = QuickConnect.objects.create(
        instance=center, name="Billing desk", type="phone_number", phone_number="+15555550150"
    )
    only_billing.available_in.add(billing)
    names = {e["name"] for e in handle_api_request(ada, "getEndpoints", {"queueARNs": [basic_queue.arn]})["endpoints"]}
    assert names == {"Supervisor desk", "Busy line", "Basic queue"}
    names = {e["name"] for e in handle_api_request(ada, "getEndpoints", {"queueARNs": [billing.arn]})["endpoints"]}
    assert "Billing desk" in names and len(names) == 4


def test_other_agents_are_endpoints_but_not_oneself(center, ada, make_agent, basic_queue):
    bob = make_agent("bob")
    names = {e["name"] for e in handle_api_request(ada, "getEndpoints", {})["endpoints"]}
    assert "Agent bob" in names and "Agent ada" not in names
    contact = call(center, basic_queue)
    handle_api_request(ada, "acceptContact", {"contactId": str(contact.contact_id)})
    to_bob = next(e for e in handle_api_request(ada, "getEndpoints", {})["endpoints"] if e["name"] == "Agent bob")
    handle_api_request(ada, "createAdditionalConnection", {"contactId": str(contact.contact_id), "endpoint": to_bob})
    assert fresh(contact).agent == bob


def test_a_state_is_found_by_its_arn_in_any_spelling_and_by_name(center, ada):
    lunch = next(s for s in snapshot_frame(ada.pk)["configuration"]["agentStates"] if s["name"] == "Lunch")
    state_id = lunch["agentStateARN"].rsplit("/", 1)[1]
    for spelling in (state_id.upper(), state_id.replace("-", "")):
        handle_api_request(fresh(ada), "putAgentState", {"state": {"agentStateARN": f"arn:x/{spelling}"}})
        assert fresh(ada).state_name == "Lunch"
        handle_api_request(fresh(ada), "putAgentState", {"state": {"name": "Break"}})
        assert fresh(ada).state_name == "Break"
    for bad in ("not-an-id", NO_ID, f"{state_id[:-1]}-"):
        assert_state_not_found(center, ada, {"agentStateARN": f"arn:x/{bad}"})


def assert_state_not_found(center, agent, state):
    params = {"state": state}
    assert_refused(center, handle_api_request, "ResourceNotFoundException", fresh(agent), "putAgentState", params)


def test_a_state_disabled_after_being_cached_is_refused(center, ada):
    handle_api_request(fresh(ada), "putAgentState", {"state": {"name": "Lunch"}})  # cached
    lunch = AgentState.objects.get(instance=center, name="Lunch")
    lunch.enabled = False
    lunch.save()
    assert_state_not_found(center, ada, {"name": "Lunch"})


def test_a_requests_state_comes_from_the_cache(center, ada):
    """The CCP socket's request (consumers.run_api_request) reads no agent state."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ccphost.ccp.consumers import run_api_request

    run_api_request(ada.pk, "putAgentState", {"state": {"name": "Lunch"}})  # the cache filled
    with CaptureQueriesContext(connection) as queries:
        run_api_request(ada.pk, "putAgentState", {"state": {"name": "Break"}})
    assert [q["sql"] for q in queries.captured_queries if 'FROM "engine_agentstate"' in q["sql"]] == []
    assert fresh(ada).state_name == "Break"
