"""`python -m ccphost.serve`, as `make run` and `make run-scaled` start ccphost: uvicorn with
ccphost's WebSocket settings (no per-message compression, frames of at most
WEBSOCKET_MAX_BYTES), checked on a served process in both test passes."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from django.conf import settings
from django.db import connection
from django.test import Client
from uvicorn.main import main as uvicorn

from ccphost.ccp.consumers import MAX_FRAME_BYTES
from ccphost.ccp.event_consumer import MAX_FRAME_CHARS
from ccphost.engine import seed
from ccphost.instances.models import Instance
from ccphost.serve import APPLICATION, WEBSOCKET_MAX_BYTES, command_line
from tests.test_scale_faults import database_url, free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]


def parsed(argv: list[str]) -> dict[str, Any]:
    """What uvicorn makes of `python -m ccphost.serve` given ``argv``."""
    return dict(uvicorn.make_context("ccphost.serve", command_line(argv)).params)


def test_ccphosts_websocket_settings_come_before_the_callers_options():
    default = parsed(["--port", "9000", "--workers", "2"])
    assert default["app"] == APPLICATION
    assert (default["port"], default["workers"]) == (9000, 2)
    assert default["ws_per_message_deflate"] is False
    assert default["ws_max_size"] == WEBSOCKET_MAX_BYTES
    other = parsed(["bench.app:application", "--ws-per-message-deflate", "true", "--ws-max-size", "1000"])
    assert other["app"] == "bench.app:application"
    assert (other["ws_per_message_deflate"], other["ws_max_size"]) == (True, 1000)  # the caller's win


def test_the_largest_frame_read_holds_the_largest_frame_a_socket_takes():
    """An event-stream frame of MAX_FRAME_CHARS characters, each up to 4 bytes in UTF-8."""
    assert WEBSOCKET_MAX_BYTES >= 4 * MAX_FRAME_CHARS >= MAX_FRAME_BYTES


def served_database_url() -> str:
    if connection.vendor == "sqlite":
        return f"sqlite:///{connection.settings_dict['NAME']}"
    return database_url()


def start_server(tmp_path: Path, port: int, **popen: Any) -> tuple["subprocess.Popen[bytes]", Path]:
    """ccphost started as `make run` starts it, on the test database: the process, and the
    file its log goes to."""
    env = {
        **os.environ,
        "DATABASE_URL": served_database_url(),
        "DEBUG": "1",
        "SECRET_KEY": settings.SECRET_KEY,  # the sessions signed here
        "SITE_URL": f"http://127.0.0.1:{port}",
        "CCPHOST_BACKGROUND_DELIVERY": "0",
        "CCPHOST_VAR_DIR": str(tmp_path),
    }
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "ccphost.serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with log.open("ab") as stderr:
        return subprocess.Popen(command, cwd=ROOT, env=env, stderr=stderr, **popen), log


@pytest.fixture
def served(transactional_db, tmp_path) -> Iterator[str]:
    """ccphost started as `make run` starts it, on the test database: its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server, log = start_server(tmp_path, port)
    try:
        wait_port(port)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        sys.stderr.write(f"--- server ---\n{log.read_text(errors='replace')}")


def signed_in_agent(django_user_model: Any) -> str:
    instance = Instance.objects.create(alias="acme", name="Acme")
    seed.seed_instance_defaults(instance)
    user = django_user_model.objects.create_user("ada")
    seed.make_agent(instance, user)
    client = Client()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


def test_a_served_ccp_socket_is_not_compressed_and_a_frame_too_large_closes_it(served, django_user_model):
    session_key = signed_in_agent(django_user_model)

    async def scenario() -> tuple[Any, list[str], dict[str, Any], int | None]:
        headers = {"Cookie": f"sessionid={session_key}", "Origin": served}
        # The client offers permessage-deflate, as browsers do.
        async with websockets.connect(
            f"{served.replace('http', 'ws')}/ws/ccp/acme/", additional_headers=headers, compression="deflate"
        ) as ws:
            kinds = []
            while not kinds or kinds[-1] != "snapshot":
                kinds.append(json.loads(await ws.recv()).get("type"))
            # Larger than a CCP frame, not than a WebSocket frame: the consumer's answer.
            await ws.send(json.dumps({"requestId": "big", "method": "getEndpoints", "pad": "x" * MAX_FRAME_BYTES}))
            too_large = json.loads(await asyncio.wait_for(ws.recv(), 10))
            # Larger than the server reads: it closes the socket, unread.
            await ws.send("x" * (WEBSOCKET_MAX_BYTES + 1))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.response is not None
            return ws.response.headers.get("Sec-WebSocket-Extensions"), kinds, too_large, ws.close_code

    extensions, kinds, too_large, close_code = asyncio.run(scenario())
    assert extensions is None  # offered, declined
    assert kinds == ["hello", "snapshot"]
    assert too_large["err"]["type"] == "FrameTooLarge"
    assert close_code == 1009  # message too big
