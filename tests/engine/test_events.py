"""The event log: Amazon Connect agent and contact event shapes, per-instance sequence."""

import pytest

from ccphost.engine import seed, services, sockets
from ccphost.engine.models import EngineEvent
from ccphost.instances.models import Instance
from tests.engine.conftest import call, state

pytestmark = pytest.mark.django_db


def test_a_call_leaves_contact_events_in_order(center, ada, basic_queue):
    contact = call(center, basic_queue)
    services.accept_contact(ada, str(contact.contact_id))
    services.destroy_contact(ada, str(contact.contact_id))
    types = list(EngineEvent.objects.filter(contact=contact, stream="contact").values_list("event_type", flat=True))
    assert types == ["INITIATED", "QUEUED", "CONNECTED_TO_AGENT", "DISCONNECTED"]
    record = EngineEvent.objects.get(contact=contact, event_type="DISCONNECTED").payload
    assert record["ContactId"] == str(contact.contact_id)
    assert record["InitialContactId"] == str(contact.contact_id)
    assert record["Channel"] == "VOICE" and record["InitiationMethod"] == "INBOUND"
    assert record["InstanceArn"] == center.arn_prefix
    assert record["QueueInfo"]["QueueArn"] == basic_queue.arn
    assert record["AgentInfo"]["AgentArn"] == ada.arn
    assert record["DisconnectTimestamp"].endswith("Z")


def test_agent_events_have_amazons_shape(center, ada):
    services.put_agent_state(ada, state(center, "Break"))
    event = EngineEvent.objects.filter(agent=ada, stream="agent").last()
    record = event.payload
    assert record["EventType"] == "STATE_CHANGE"
    assert record["Version"] == "2017-10-01"
    assert record["AgentARN"] == ada.arn and record["InstanceARN"] == center.arn_prefix
    assert record["EventId"] == str(event.event_id)
    assert record["CurrentAgentSnapshot"]["AgentStatus"]["Name"] == "Break"
    assert record["PreviousAgentSnapshot"]["AgentStatus"]["Name"] == "Available"
    configuration = record["CurrentAgentSnapshot"]["Configuration"]
    assert configuration["Username"] == "ada"
    assert configuration["RoutingProfile"]["InboundQueues"][0]["Name"] == "BasicQueue"


def test_login_and_logout_with_the_first_and_last_socket(center, ada):
    sockets.open_ccp_socket(ada, "chan-1", "session-1")
    sockets.open_ccp_socket(ada, "chan-2", "session-1")
    sockets.close_ccp_socket(ada, "chan-1")
    sockets.close_ccp_socket(ada, "chan-2")
    sockets.record_heartbeat(ada)
    types = list(EngineEvent.objects.filter(agent=ada, stream="agent").values_list("event_type", flat=True))
    assert types.count("LOGIN") == 1 and types.count("LOGOUT") == 1
    assert types.index("LOGIN") < types.index("LOGOUT")
    assert types[-1] == "HEART_BEAT"


def test_an_opened_socket_is_recorded_with_its_agent_session_and_times(center, ada):
    from datetime import timedelta

    from django.utils import timezone

    from ccphost.engine.models import CcpSocket

    before = timezone.now()
    sockets.open_ccp_socket(ada, "chan-1", "session-1")
    row = CcpSocket.objects.get()
    assert (row.agent_id, row.channel_name, row.session_key) == (ada.pk, "chan-1", "session-1")
    assert before <= row.opened_at <= row.last_seen <= timezone.now()
    assert row.opened_at.utcoffset() == timedelta(0)  # read back aware, as saved
    sockets.open_ccp_socket(ada, "chan-1", "session-2")  # the same channel again: updated, not a second row
    assert list(CcpSocket.objects.values_list("channel_name", "session_key")) == [("chan-1", "session-2")]


def test_stale_sockets_of_a_dead_process_do_not_count(center, ada):
    from datetime import timedelta

    from ccphost.engine.models import CcpSocket

    sockets.open_ccp_socket(ada, "chan-dead", "session-old")
    CcpSocket.objects.update(last_seen=CcpSocket.objects.get().last_seen - timedelta(minutes=10))
    sockets.open_ccp_socket(ada, "chan-new", "session-new")
    ada.refresh_from_db()
    assert ada.state_name == "Available"  # not MultipleCcpWindows
    assert list(CcpSocket.objects.values_list("channel_name", flat=True)) == ["chan-new"]


def test_closing_a_socket_already_purged_or_of_a_deleted_agent_records_nothing(center, ada, make_agent):
    """A process that closes a socket another purged as stale, or whose agent was deleted
    since it opened: nothing to forget, no LOGOUT; the agent's other socket stays."""
    from ccphost.engine.models import Agent, CcpSocket

    sockets.open_ccp_socket(ada, "chan-1", "session-1")
    sockets.open_ccp_socket(ada, "chan-2", "session-1")
    CcpSocket.objects.filter(channel_name="chan-1").delete()
    sockets.close_ccp_socket(ada, "chan-1")
    assert list(CcpSocket.objects.values_list("channel_name", flat=True)) == ["chan-2"]
    assert not EngineEvent.objects.filter(agent=ada, event_type="LOGOUT").exists()

    bob = make_agent("bob")
    sockets.open_ccp_socket(bob, "chan-bob", "session-bob")
    Agent.objects.filter(pk=bob.pk).delete()
    sockets.close_ccp_socket(bob, "chan-bob")
    assert not CcpSocket.objects.filter(channel_name="chan-bob").exists()


def test_sequence_numbers_grow_per_instance(center, ada, basic_queue):
    other = Instance.objects.create(alias="other", name="Other")
    seed.seed_instance_defaults(other)
    for _ in range(3):
        call(center, basic_queue)
    sequences = list(EngineEvent.objects.filter(instance=center).order_by("id").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    assert not EngineEvent.objects.filter(instance=other).exists()


def test_announced_events_are_the_rows_written(center, ada, basic_queue, django_capture_on_commit_callbacks):
    """A change with several events (a call routed to Ada): each announced event has its
    row's primary key and sequence, numbered in the order recorded, and counts as saved."""
    from ccphost.engine.signals import event_committed

    announced: list[EngineEvent] = []

    def collect(sender, event, **kwargs):
        announced.append(event)

    event_committed.connect(collect)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            call(center, basic_queue)
    finally:
        event_committed.disconnect(collect)
    assert len(announced) >= 3
    rows = {row.pk: row for row in EngineEvent.objects.filter(pk__in=[e.pk for e in announced])}
    assert [rows[e.pk].sequence for e in announced] == [e.sequence for e in announced]
    assert [str(rows[e.pk].event_id) for e in announced] == [str(e.event_id) for e in announced]
    assert [(rows[e.pk].payload, rows[e.pk].created_at) for e in announced] == [
        (e.payload, e.created_at) for e in announced
    ]
    assert [e.sequence for e in announced] == list(range(announced[0].sequence, announced[0].sequence + len(announced)))
    assert all(not e._state.adding for e in announced)
