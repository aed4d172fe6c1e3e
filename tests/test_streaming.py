"""Files under ASGI: sent by an asynchronous iterator, not read whole by Django's fallback."""

import warnings
from pathlib import Path

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.test import Client

from ccphost.streaming import BLOCK_SIZE, blocks

ROOT = Path(__file__).resolve().parent.parent
STATIC = "/static/ccphost/ccp/socket.js"


async def asgi_get(path: str) -> tuple[int, bytes]:
    """Through Django's ASGI handler, as the server runs it: the status and the whole body."""
    scope = {"type": "http", "http_version": "1.1", "method": "GET", "path": path, "query_string": b"", "headers": []}
    communicator = ApplicationCommunicator(ASGIHandler(), scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(5)
    body = b""
    while True:
        message = await communicator.receive_output(5)
        body += message.get("body", b"")
        if not message.get("more_body"):
            return start["status"], body


@pytest.mark.django_db
async def test_a_static_file_under_asgi_is_sent_whole_without_the_synchronous_iterator_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, body = await asgi_get(STATIC)
    assert status == 200
    assert body == (ROOT / "static/ccphost/ccp/socket.js").read_bytes()
    assert [str(w.message) for w in caught if "synchronous iterators" in str(w.message)] == []


async def test_a_file_is_read_block_by_block(tmp_path):
    content = bytes(range(256)) * (2 * BLOCK_SIZE // 256) + b"tail"
    (tmp_path / "big.bin").write_bytes(content)
    with (tmp_path / "big.bin").open("rb") as file:
        sent = [block async for block in blocks(file, BLOCK_SIZE)]
    assert [len(block) for block in sent] == [BLOCK_SIZE, BLOCK_SIZE, 4]
    assert b"".join(sent) == content


@pytest.mark.django_db
def test_under_wsgi_a_file_is_left_to_its_synchronous_iterator():
    response = Client().get(STATIC)
    assert response.status_code == 200 and not response.is_async
    assert b"".join(response.streaming_content) == (ROOT / "static/ccphost/ccp/socket.js").read_bytes()
