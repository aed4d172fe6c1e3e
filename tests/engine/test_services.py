"""Every agent action: what it does, and each precondition refused with nothing changed."""

import pytest

from ccphost.engine import network, services
from ccphost.engine.core import EngineError
from ccphost.engine.models import Connection, Contact, EngineEvent, Queue
from ccphost.engine.services import Endpoint
from ccphost.engine.timers import run_due_timers
from tests.engine.conftest import assert_refused, call, fresh, later, leg_of, state

pytestmark = pytest.mark.django_db

CUSTOMER = "+15555550123"
ANSWERS = Endpoint(type="phone_number", phone_number="+15555550177")
NO_CONTACT = "00000000-0000-0000-0000-000000000000"


def connected_call(center, agent, queue):
    contact = call(center, queue)
    services.accept_contact(agent, str(contact.contact_id))
    return fresh(contact)


def ids(contact, connection=None):
    return (
        (str(contact.contact_id),) if connection is None else (str(contact.contact_id), str(connection.connection_id))
    )


# putAgentState


def test_agent_becomes_available_and_routable(center, make_agent):
    agent = make_agent("bo", available=False)
    assert (agent.state_type, agent.state_name) == ("offline", "Offline")
    services.put_agent_state(agent, state(center, "Available"))
    agent = fresh(agent)
    assert (agent.state_type, agent.state_name, agent.status.name) == ("routable", "Available", "Available")
    assert agent.idle_since is not None
    assert agent.snapshot_version == 1


def test_state_change_on_a_contact_becomes_next_state(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    services.put_agent_state(ada, state(center, "Lunch"))
    ada = fresh(ada)
    assert ada.state_name == "Busy" and ada.next_status.name == "Lunch"
    services.destroy_contact(ada, str(contact.contact_id))
    services.clear_contact(ada, str(contact.contact_id))
    ada = fresh(ada)
    assert (ada.state_name, ada.next_status) == ("Lunch", None)


def test_state_of_another_instance_is_refused(center, ada, django_user_model):
    from ccphost.engine import seed
    from ccphost.instances.models import Instance

    other = Instance.objects.create(alias="other", name="Other")
    seed.seed_instance_defaults(other)
    assert_refused(center, services.put_agent_state, "ResourceNotFoundException", ada, state(other, "Break"))


def test_disabled_state_is_refused(center, ada):
    lunch = state(center, "Lunch")
    lunch.enabled = False
    lunch.save()
    assert_refused(center, services.put_agent_state, "ResourceNotFoundException", ada, lunch)


# updateAgentConfiguration


def test_configuration_update(center, ada):
    services.update_agent_configuration(
        ada, softphone_enabled=False, softphone_auto_accept=True, extension="+1 555 555 0100", language="fr_FR"
    )
    ada = fresh(ada)
    assert (ada.softphone_enabled, ada.softphone_auto_accept, ada.extension, ada.language) == (
        False,
        True,
        "+15555550100",
        "fr_FR",
    )


def test_desk_phone_needs_an_e164_extension(center, ada):
    error = assert_refused(
        center,
        services.update_agent_configuration,
        "InvalidParameterException",
        ada,
        softphone_enabled=False,
        softphone_auto_accept=False,
        extension="5550100",
        language="en_US",
    )
    assert "E.164" in error.message


# acceptContact / rejectContact


def test_accept_connects_the_call(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    assert contact.state == "connected"
    assert leg_of(contact, ada).state == "connected"
    assert fresh(ada).state_name == "Busy"
    assert EngineEvent.objects.filter(contact=contact, event_type="CONNECTED_TO_AGENT").exists()


def test_accept_refused_when_not_ringing(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    assert_refused(center, services.accept_contact, "InvalidStateException", ada, *ids(contact))


def test_unknown_contact_is_not_found(center, ada):
    assert_refused(
        center, services.accept_contact, "ResourceNotFoundException", ada, "00000000-0000-0000-0000-000000000000"
    )


def test_reject_sends_the_contact_to_another_agent(center, ada, make_agent, basic_queue):
    contact = call(center, basic_queue)
    bob = make_agent("bob")
    services.reject_contact(ada, str(contact.contact_id))
    contact = fresh(contact)
    assert contact.agent == bob
    assert not Connection.objects.filter(contact=contact, agent=ada, cleared_at__isnull=True).exists()
    assert fresh(ada).state_name == "Available"


def test_reject_refused_when_connected(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    assert_refused(center, services.reject_contact, "InvalidStateException", ada, *ids(contact))


def test_auto_accept_connects_at_once(center, make_agent, basic_queue):
    auto = make_agent("auto", softphone_auto_accept=True)
    contact = fresh(call(center, basic_queue))
    assert contact.agent == auto and contact.state == "connected"


# destroyContact, destroyConnection, clearContact, completeContact


def test_hang_up_enters_after_call_work_then_clear(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    services.destroy_contact(ada, str(contact.contact_id))
    assert fresh(contact).state == "ended"
    assert fresh(ada).state_name == "AfterCallWork"
    services.complete_contact(ada, str(contact.contact_id))
    assert fresh(ada).state_name == "Available"
    assert_refused(center, services.clear_contact, "ResourceNotFoundException", ada, *ids(contact))


def test_hang_up_twice_is_refused(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    services.destroy_contact(ada, str(contact.contact_id))
    assert_refused(center, services.destroy_contact, "InvalidStateException", ada, *ids(contact))


def test_clear_refused_while_talking(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    assert_refused(center, services.clear_contact, "InvalidStateException", ada, *ids(contact))


def test_destroy_customer_connection_ends_the_contact(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    customer = contact.connections.get(initial=True)
    services.destroy_connection(ada, *ids(contact, customer))
    assert fresh(contact).state == "ended"


def test_destroy_unknown_connection_is_refused(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    assert_refused(
        center,
        services.destroy_connection,
        "ResourceNotFoundException",
        ada,
        str(contact.contact_id),
        "00000000-0000-0000-0000-000000000000",
    )


# createOutboundContact


def test_outbound_call_dials_then_connects(center, ada):
    contact = services.create_outbound_contact(ada, ANSWERS)
    customer = contact.connections.get(initial=True)
    assert (fresh(contact).state, fresh(customer).state, fresh(ada).state_name) == (
        "connecting",
        "connecting",
        "CallingCustomer",
    )
    run_due_timers(later(2))
    assert (fresh(contact).state, fresh(customer).state, fresh(ada).state_name) == ("connected", "connected", "Busy")


@pytest.mark.parametrize(
    ("number", "error_state"),
    [
        ("+15555550002", "LineEngagedCustomer"),
        ("+15555550004", "FailedConnectCustomer"),
        ("+15555550009", "BadAddressCustomer"),
        ("12", "BadAddressCustomer"),
    ],
)
def test_outbound_failures_put_the_agent_in_an_error_state(center, ada, number, error_state):
    contact = services.create_outbound_contact(ada, Endpoint(type="phone_number", phone_number=number))
    run_due_timers(later(2))
    assert fresh(contact).state == "ended"
    assert (fresh(ada).state_type, fresh(ada).state_name) == ("error", error_state)
    services.clear_contact(ada, str(contact.contact_id))
    assert fresh(ada).state_name == "Available"


def test_unanswered_outbound_call_is_missed_by_the_customer(center, ada):
    contact = services.create_outbound_contact(ada, Endpoint(type="phone_number", phone_number="+15555550003"))
    run_due_timers(later(10))
    assert fresh(contact).state == "connecting"
    run_due_timers(later(31))
    assert fresh(ada).state_name == "MissedCallCustomer"


def test_outbound_refused_while_on_a_contact(center, ada, basic_queue):
    connected_call(center, ada, basic_queue)
    assert_refused(center, services.create_outbound_contact, "InvalidStateException", ada, ANSWERS)


def test_outbound_refused_when_offline(center, make_agent):
    agent = make_agent("off", available=False)
    assert_refused(center, services.create_outbound_contact, "InvalidStateException", agent, ANSWERS)


def test_outbound_refused_outside_dialable_countries(center, ada):
    endpoint = Endpoint(type="phone_number", phone_number="+442071234567")
    assert_refused(center, services.create_outbound_contact, "BadEndpointException", ada, endpoint)


def test_outbound_refused_without_permission(center, make_agent):
    agent = make_agent("noperm", permissions=[])
    assert_refused(center, services.create_outbound_contact, "AccessDeniedException", agent, ANSWERS)


def test_outbound_to_a_queue_endpoint_is_refused(center, ada, basic_queue):
    endpoint = Endpoint(type="queue", queue=basic_queue)
    assert_refused(center, services.create_outbound_contact, "BadEndpointException", ada, endpoint)


# createAdditionalConnection, toggle, conference, hold, resume


def three_way(center, agent, queue):
    contact = connected_call(center, agent, queue)
    services.create_additional_connection(agent, str(contact.contact_id), ANSWERS)
    run_due_timers(later(2))
    customer = contact.connections.get(initial=True)
    third = contact.connections.get(type="outbound", initial=False)
    return contact, customer, third


def test_third_party_joins_with_customer_on_hold(center, ada, basic_queue):
    _, customer, third = three_way(center, ada, basic_queue)
    assert (customer.state, third.state) == ("hold", "connected")


def test_second_third_party_is_refused(center, ada, basic_queue):
    contact, _, _ = three_way(center, ada, basic_queue)
    assert_refused(
        center, services.create_additional_connection, "InvalidStateException", ada, str(contact.contact_id), ANSWERS
    )


def test_transfer_refused_before_accept(center, ada, basic_queue):
    contact = call(center, basic_queue)
    assert_refused(
        center, services.create_additional_connection, "InvalidStateException", ada, str(contact.contact_id), ANSWERS
    )


def test_toggle_swaps_hold(center, ada, basic_queue):
    contact, customer, third = three_way(center, ada, basic_queue)
    services.toggle_active_connections(ada, *ids(contact, third))
    assert (fresh(customer).state, fresh(third).state) == ("connected", "hold")


def test_toggle_refused_with_one_party(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    customer = contact.connections.get(initial=True)
    assert_refused(center, services.toggle_active_connections, "InvalidStateException", ada, *ids(contact, customer))


def test_conference_connects_everyone(center, ada, basic_queue):
    contact, customer, third = three_way(center, ada, basic_queue)
    services.conference_connections(ada, str(contact.contact_id))
    assert (fresh(customer).state, fresh(third).state) == ("connected", "connected")


def test_conference_refused_with_one_party(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    assert_refused(center, services.conference_connections, "InvalidStateException", ada, *ids(contact))


def test_hang_up_third_party_keeps_the_customer(center, ada, basic_queue):
    contact, _, third = three_way(center, ada, basic_queue)
    services.destroy_connection(ada, *ids(contact, third))
    assert (fresh(third).state, fresh(contact).state) == ("disconnected", "connected")


def test_transfer_to_queue_goes_to_another_agent(center, ada, make_agent, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    bob = make_agent("bob")
    services.create_additional_connection(ada, str(contact.contact_id), Endpoint(type="queue", queue=basic_queue))
    contact = fresh(contact)
    assert contact.agent == bob and contact.initiation_method == "transfer"
    assert fresh(ada).state_name == "AfterCallWork"


def test_transfer_to_busy_agent_is_refused(center, ada, make_agent, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    bob = make_agent("bob", available=False)
    assert_refused(
        center,
        services.create_additional_connection,
        "InvalidStateException",
        ada,
        str(contact.contact_id),
        Endpoint(type="agent", agent=bob),
    )


def test_hold_and_resume(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    customer = contact.connections.get(initial=True)
    services.hold_connection(ada, *ids(contact, customer))
    assert fresh(customer).state == "hold"
    assert_refused(center, services.hold_connection, "InvalidStateException", ada, *ids(contact, customer))
    services.resume_connection(ada, *ids(contact, customer))
    assert fresh(customer).state == "connected"
    assert_refused(center, services.resume_connection, "InvalidStateException", ada, *ids(contact, customer))


# sendDigits, mute, unmute, notifyContactIssue


def test_digits_are_recorded(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    customer = contact.connections.get(initial=True)
    services.send_digits(ada, *ids(contact, customer), "12#*")
    assert fresh(customer).digits_sent == "12#*"
    assert EngineEvent.objects.filter(event_type="DIGITS_SENT", contact=contact).exists()


def test_bad_digits_are_refused(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    customer = contact.connections.get(initial=True)
    assert_refused(center, services.send_digits, "InvalidParameterException", ada, *ids(contact, customer), "12a")


def test_digits_refused_on_hold(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    customer = contact.connections.get(initial=True)
    services.hold_connection(ada, *ids(contact, customer))
    assert_refused(center, services.send_digits, "InvalidStateException", ada, *ids(contact, customer), "1")


def test_mute_and_unmute(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    own = leg_of(contact, ada)
    services.mute_participant(ada, *ids(contact, own))
    assert fresh(own).mute is True
    services.unmute_participant(ada, *ids(contact, own))
    assert fresh(own).mute is False


def test_mute_refused_while_ringing(center, ada, basic_queue):
    contact = call(center, basic_queue)
    own = leg_of(contact, ada)
    assert_refused(center, services.mute_participant, "InvalidStateException", ada, *ids(contact, own))


def test_notify_issue_is_stored(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    services.notify_contact_issue(ada, str(contact.contact_id), "echo", "I hear myself")
    assert fresh(contact).issues[0]["issueCode"] == "echo"


def test_notify_issue_refused_for_others_contact(center, ada, make_agent, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    bob = make_agent("bob")
    assert_refused(
        center, services.notify_contact_issue, "ResourceNotFoundException", bob, str(contact.contact_id), "x", ""
    )


# getEndpoints


def test_endpoints_are_the_quick_connects(center, ada):
    page, next_start = services.list_endpoints(ada, [], 0, 2)
    assert len(page) == 2 and next_start == 2
    rest, end = services.list_endpoints(ada, [], 2, 2)
    assert len(rest) == 1 and end is None


# The simulated network


def test_customer_hangs_up_while_ringing(center, ada, basic_queue):
    contact = call(center, basic_queue)
    network.customer_hangs_up(center, str(contact.contact_id))
    assert fresh(contact).state == "ended"
    assert fresh(ada).state_name == "Available"  # a ringing contact leaves no after-call work


def test_customer_hangs_up_twice_is_refused(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    network.customer_hangs_up(center, str(contact.contact_id))
    assert fresh(ada).state_name == "AfterCallWork"
    assert_refused(center, network.customer_hangs_up, "InvalidStateException", center, str(contact.contact_id))


def test_customer_digits_are_recorded(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    network.customer_presses_digits(center, str(contact.contact_id), "42#")
    assert fresh(contact).customer_digits == "42#"
    assert_refused(
        center, network.customer_presses_digits, "InvalidParameterException", center, str(contact.contact_id), "x"
    )


def test_inbound_call_with_attributes(center, ada, basic_queue):
    contact = call(center, basic_queue, orderId="A-17")
    assert fresh(contact).attributes == {"orderId": "A-17"}


def test_inbound_call_from_a_bad_number_is_refused(center, basic_queue):
    assert_refused(center, network.start_inbound_contact, "InvalidParameterException", center, basic_queue, "hello")


def test_inbound_call_to_another_instances_queue_is_refused(center, basic_queue):
    from ccphost.instances.models import Instance

    other = Instance.objects.create(alias="other", name="Other")
    assert_refused(center, network.start_inbound_contact, "ResourceNotFoundException", other, basic_queue, CUSTOMER)
    assert not Contact.objects.filter(instance=other).exists()


def test_queue_lookup(center, basic_queue):
    assert network.find_queue(center, "BasicQueue") == basic_queue
    assert network.find_queue(center, basic_queue.arn) == basic_queue
    with pytest.raises(EngineError):
        network.find_queue(center, "Nope")
    assert Queue.objects.count() == 1


# More refusals


def test_extension_must_be_e164_even_with_softphone(center, ada):
    assert_refused(
        center,
        services.update_agent_configuration,
        "InvalidParameterException",
        ada,
        softphone_enabled=True,
        softphone_auto_accept=False,
        extension="desk 12",
        language="en_US",
    )


def test_state_change_refused_with_multiple_ccp_windows(center, ada):
    from ccphost.engine import sockets

    sockets.open_ccp_socket(ada, "chan-a", "session-a")
    sockets.open_ccp_socket(ada, "chan-b", "session-b")
    assert fresh(ada).state_name == "MultipleCcpWindows"
    assert_refused(center, services.put_agent_state, "InvalidStateException", ada, state(center, "Break"))


def test_third_party_outside_dialable_countries_is_refused(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    endpoint = Endpoint(type="phone_number", phone_number="+33142685300")
    assert_refused(
        center, services.create_additional_connection, "BadEndpointException", ada, str(contact.contact_id), endpoint
    )


def test_transfer_to_oneself_is_refused(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    endpoint = Endpoint(type="agent", agent=ada)
    assert_refused(
        center, services.create_additional_connection, "InvalidStateException", ada, str(contact.contact_id), endpoint
    )


def test_transfer_to_an_available_agent_rings_them(center, ada, make_agent, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    bob = make_agent("bob")
    services.create_additional_connection(ada, str(contact.contact_id), Endpoint(type="agent", agent=bob))
    assert fresh(contact).agent == bob and leg_of(contact, bob).state == "connecting"


def test_an_agent_cannot_hang_up_another_agents_leg(center, ada, make_agent, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    bob = make_agent("bob")
    services.create_additional_connection(ada, str(contact.contact_id), Endpoint(type="agent", agent=bob))
    bobs_leg = leg_of(contact, bob)
    assert_refused(center, services.destroy_connection, "AccessDeniedException", ada, *ids(contact, bobs_leg))
    assert_refused(center, services.hold_connection, "InvalidStateException", ada, *ids(contact, bobs_leg))


def test_unmute_refused_after_the_call(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    own = leg_of(contact, ada)
    services.destroy_contact(ada, str(contact.contact_id))
    assert_refused(center, services.unmute_participant, "InvalidStateException", ada, *ids(contact, own))
    assert_refused(center, services.notify_contact_issue, "ResourceNotFoundException", ada, NO_CONTACT, "x", "")


def test_callback_customer_cannot_hang_up_before_being_called(center, basic_queue):
    contact = network.start_queue_callback(center, basic_queue, CUSTOMER)
    assert_refused(center, network.customer_hangs_up, "InvalidStateException", center, str(contact.contact_id))


def test_customer_digits_refused_on_hold(center, ada, basic_queue):
    contact = connected_call(center, ada, basic_queue)
    customer = contact.connections.get(initial=True)
    services.hold_connection(ada, *ids(contact, customer))
    assert_refused(
        center, network.customer_presses_digits, "InvalidStateException", center, str(contact.contact_id), "1"
    )


def test_configuration_changed_pushes_to_every_agent(center, ada, make_agent):
    bob = make_agent("bob")
    services.configuration_changed(center)
    assert fresh(ada).snapshot_version == ada.snapshot_version + 1
    assert fresh(bob).snapshot_version == bob.snapshot_version + 1
