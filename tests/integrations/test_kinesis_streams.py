"""Event records put to Kinesis (moto stands in for AWS): in order, at least once, from a
cursor that survives restarts and moves only past what Kinesis took."""

import json

import boto3
import pytest
from moto import mock_aws

from ccphost.engine import network, seed, services
from ccphost.engine.models import AgentState, EngineEvent, Queue
from integrations.streams.forwarder import forward_all
from integrations.streams.models import KinesisStream

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("kinesis", region_name=REGION)
        for name in ("agent-events", "contact-events"):
            client.create_stream(StreamName=name, ShardCount=1)
        yield client


@pytest.fixture
def center(instance, django_user_model):
    seed.seed_instance_defaults(instance)
    agent = seed.make_agent(instance, django_user_model.objects.create_user("ada"))
    return instance, agent


def read_all(client, stream: str) -> list[dict]:
    shard = client.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = client.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    return [json.loads(r["Data"]) for r in records]


def make_traffic(instance, agent) -> None:
    services.put_agent_state(agent, AgentState.objects.get(instance=instance, name="Available"))
    queue = Queue.objects.get(instance=instance, name=seed.BASIC_QUEUE)
    network.start_inbound_contact(instance, queue, "+15555550123", {})


def test_agent_and_contact_records_reach_their_streams_in_order(aws, center):
    instance, agent = center
    KinesisStream.objects.create(instance=instance, records="agent", stream_name="agent-events", region=REGION)
    KinesisStream.objects.create(instance=instance, records="contact", stream_name="contact-events", region=REGION)
    make_traffic(instance, agent)

    assert forward_all() == EngineEvent.objects.count()
    agent_records = read_all(aws, "agent-events")
    contact_records = read_all(aws, "contact-events")
    expected_agent = list(EngineEvent.objects.filter(stream="agent").order_by("sequence"))
    assert [r["EventId"] for r in agent_records] == [e.payload["EventId"] for e in expected_agent]
    assert {r["EventType"] for r in contact_records} >= {"INITIATED", "QUEUED"}
    assert all(r["AgentARN"] == agent.arn for r in agent_records)
    assert forward_all() == 0, "nothing is put twice"


def test_cursor_survives_a_restart_and_continues(aws, center):
    instance, agent = center
    stream = KinesisStream.objects.create(instance=instance, records="agent", stream_name="agent-events", region=REGION)
    make_traffic(instance, agent)
    forward_all()
    first = KinesisStream.objects.get(pk=stream.pk).last_sequence
    services.put_agent_state(agent, AgentState.objects.get(instance=instance, name="Break"))
    forward_all()  # a new process would read the same cursor from the database
    records = read_all(aws, "agent-events")
    assert len(records) == EngineEvent.objects.filter(stream="agent").count()
    assert KinesisStream.objects.get(pk=stream.pk).last_sequence > first


class PartlyFailingKinesis:
    """Takes the first record of each batch and throttles the rest, as Kinesis can."""

    def __init__(self) -> None:
        self.taken: list[dict] = []

    def put_records(self, StreamName: str, Records: list[dict]) -> dict:
        self.taken.append(json.loads(Records[0]["Data"]))
        failed = [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}]
        results = [{"SequenceNumber": "1"}] + failed * (len(Records) - 1)
        return {"FailedRecordCount": len(Records) - 1, "Records": results}


def test_partial_failure_moves_the_cursor_only_past_what_was_taken(center):
    instance, agent = center
    stream = KinesisStream.objects.create(instance=instance, records="agent", stream_name="s", region=REGION)
    make_traffic(instance, agent)
    kinesis = PartlyFailingKinesis()
    assert forward_all(lambda region: kinesis) == 1
    assert "ProvisionedThroughputExceededException" in KinesisStream.objects.get(pk=stream.pk).last_error
    passes = 1
    while forward_all(lambda region: kinesis):
        passes += 1
    expected = [e.payload["EventId"] for e in EngineEvent.objects.filter(stream="agent").order_by("sequence")]
    assert [r["EventId"] for r in kinesis.taken] == expected, "every record once, in order"
    assert passes == len(expected)
    assert KinesisStream.objects.get(pk=stream.pk).last_error == "", "cleared by a whole batch taken"


def test_aws_errors_are_recorded_not_raised(center, monkeypatch):
    instance, agent = center
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():  # no stream created: Kinesis answers ResourceNotFoundException
        stream = KinesisStream.objects.create(instance=instance, records="agent", stream_name="gone", region=REGION)
        make_traffic(instance, agent)
        assert forward_all() == 0
    stream.refresh_from_db()
    assert "ResourceNotFoundException" in stream.last_error
    assert stream.last_sequence == 0
