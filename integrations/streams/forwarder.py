"""Put event records to Kinesis, tailing the event log from each stream's cursor.

Run in every ASGI process (``ccphost.background``) or by ``manage.py
forward_events``: a stream is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so one process at a time forwards it; a restart resumes from the cursor.
"""

import json
import logging
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from django.db import connection, transaction

from ccphost.engine.models import EngineEvent
from integrations.streams.models import KinesisStream

logger = logging.getLogger(__name__)

BATCH = 500  # Kinesis PutRecords takes at most 500 records
ClientFactory = Callable[[str], Any]


def kinesis_client(region: str) -> Any:
    return boto3.client("kinesis", region_name=region)


def partition_key(event: EngineEvent) -> str:
    """Records of one agent (or one contact) go to one shard, so they stay in order."""
    record = event.payload
    return str(record.get("AgentARN") or record.get("ContactId") or event.instance_id)[:256]


def forward_stream(stream: KinesisStream, client: Any) -> int:
    """Put the next batch of records; returns how many Kinesis took. Moves the cursor past
    the longest prefix that succeeded, so order holds and nothing is skipped."""
    events = list(
        EngineEvent.objects.filter(
            instance_id=stream.instance_id, stream=stream.records, sequence__gt=stream.last_sequence
        ).order_by("sequence")[:BATCH]
    )
    if not events:
        return 0
    entries = [{"Data": json.dumps(e.payload).encode(), "PartitionKey": partition_key(e)} for e in events]
    answer = client.put_records(StreamName=stream.stream_name, Records=entries)
    taken = 0
    for result in answer["Records"]:
        if "ErrorCode" in result:
            stream.last_error = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
            break
        taken += 1
    else:
        stream.last_error = ""
    if taken:
        stream.last_sequence = events[taken - 1].sequence
    stream.save(update_fields=["last_sequence", "last_error", "updated_at"])
    return taken


def forward_one(pk: int, client_factory: ClientFactory) -> int:
    stream = KinesisStream.objects.filter(pk=pk)
    if connection.features.has_select_for_update_skip_locked:
        # Claimed for the length of the pass: another process skips it.
        stream = stream.select_for_update(skip_locked=True)
    claimed = stream.first()
    if claimed is None:
        return 0
    try:
        return forward_stream(claimed, client_factory(claimed.region))
    except (BotoCoreError, ClientError) as exc:
        claimed.last_error = str(exc)[:2000]
        claimed.save(update_fields=["last_error", "updated_at"])
        logger.warning("Kinesis stream %s: %s", claimed.stream_name, exc)
        return 0


def forward_all(client_factory: ClientFactory = kinesis_client) -> int:
    """One pass over every enabled stream; returns the number of records put."""
    total = 0
    for pk in KinesisStream.objects.filter(enabled=True).values_list("pk", flat=True):
        if connection.features.has_select_for_update_skip_locked:
            with transaction.atomic():
                total += forward_one(pk, client_factory)
        else:
            # SQLite (one process): no transaction around the network call, which would
            # hold the database's only write lock while Kinesis answers.
            total += forward_one(pk, client_factory)
    return total
