"""The CCP page applies a snapshot frame only when its version is newer than the last one it
applied: a repeated, an old or an unversioned frame changes neither the page nor its host.

Playwright routes the CCP's WebSocket through the test, which forwards every frame both ways
and injects the bad frames toward the page."""

import json
import re
from typing import Any

import pytest
from playwright.sync_api import WebSocketRoute, expect

from ccphost.engine import seed, services
from ccphost.engine.models import Agent
from ccphost.instances.models import Instance
from ccphost.instances.services import Actor, approve_origins
from tests.browser.fixtures import elsewhere, session_cookie
from tests.engine.conftest import state

pytestmark = pytest.mark.browser

# The CRM page embeds the CCP and records the state name of every agent::update it posts.
CRM_PAGE = """<!doctype html><meta charset="utf-8"><title>CRM</title>
<iframe id="ccp" src="{ccp}" allow="microphone; autoplay"></iframe>
<script>
  window.updates = [];
  window.addEventListener("message", (m) => {{
    if (m.source !== document.getElementById("ccp").contentWindow || !m.data) return;
    if (m.data.event === "agent::update") window.updates.push(m.data.data.snapshot.state.name);
  }});
</script>"""


def state_of(frame_text: str) -> str:
    return json.loads(frame_text)["snapshot"]["state"]["name"]


def version_of(frame_text: str) -> int:
    return json.loads(frame_text)["version"]


def with_version(frame_text: str, version: Any, *, drop: bool = False) -> str:
    frame = json.loads(frame_text)
    if drop:
        del frame["version"]
    else:
        frame["version"] = version
    return json.dumps(frame)


def test_ccp_ignores_repeated_old_and_unversioned_snapshots(
    transactional_db, ccphost_server, crm_server, new_page, django_user_model
):
    instance = Instance.objects.create(alias="acme", name="Acme Support")
    approve_origins(instance, [crm_server.origin], Actor(source="command"))
    seed.seed_instance_defaults(instance)
    agent = seed.make_agent(instance, django_user_model.objects.create_user("agent1"))
    elsewhere(services.put_agent_state, agent, state(instance, "Available"))

    routes: list[WebSocketRoute] = []
    from_server: list[str] = []  # every snapshot frame the server sent, as sent

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            if isinstance(message, str) and json.loads(message).get("type") == "snapshot":
                from_server.append(message)
            ws.send(message)

        server.on_message(to_page)  # page -> server frames are still forwarded as they are
        routes.append(ws)

    page = new_page()
    page.context.add_cookies([session_cookie(ccphost_server, agent.user)])
    page.context.route_web_socket(re.compile(r"/ws/ccp/acme/$"), route)
    page.goto(crm_server.add("/crm.html", CRM_PAGE.format(ccp=f"{ccphost_server.url}/connect/acme/ccp-v2/")))
    ccp = page.frame_locator("#ccp")
    select = ccp.locator("#state-select")

    def host_updates() -> list[str]:
        return page.evaluate("window.updates")

    def wait_for_host_state(name: str) -> None:
        page.wait_for_function("(name) => window.updates.at(-1) === name", arg=name)

    def host_matches_server() -> None:
        """One agent::update per genuine snapshot, in order, and nothing else."""
        expected = [state_of(text) for text in from_server]
        for _ in range(40):  # a frame the server sent may still be on its way to the page
            if host_updates() == expected:
                break
            page.wait_for_timeout(50)
        assert host_updates() == expected, (host_updates(), expected)

    # The CCP opens at Available (version v), then the agent really goes on Break (v + 1).
    wait_for_host_state("Available")
    expect(select).to_have_value("Available")
    available = [text for text in from_server if state_of(text) == "Available"][-1]
    elsewhere(services.put_agent_state, Agent.objects.get(pk=agent.pk), state(instance, "Break"))
    wait_for_host_state("Break")
    expect(select).to_have_value("Break")
    on_break = from_server[-1]
    assert state_of(on_break) == "Break" and version_of(on_break) > version_of(available)
    host_matches_server()
    updates_before = len(host_updates())
    assert len(routes) == 1, "the CCP's socket reconnected: the test would inject into a stale route"

    # Toward the page: the same Break frame again, the older Available frame, and Available
    # frames without a usable version (none, null, a number as a string, a newer number
    # as a string that JavaScript's <= would still compare).
    newer = version_of(on_break) + 100
    for text in [
        on_break,
        available,
        with_version(available, None, drop=True),
        with_version(available, None),
        with_version(available, str(newer)),
        with_version(available, f"{newer}.0"),
    ]:
        routes[0].send(text)
    # Frames are handled in order: once this hello shows, every frame above was handled.
    routes[0].send(json.dumps({"type": "hello", "username": "after-injection", "instance": "acme"}))
    expect(ccp.locator("#ccp-status")).to_have_text("Signed in as after-injection")

    expect(select).to_have_value("Break")
    assert len(host_updates()) == updates_before, host_updates()
    host_matches_server()

    # A genuine later change (v + 2) is still applied.
    elsewhere(services.put_agent_state, Agent.objects.get(pk=agent.pk), state(instance, "Lunch"))
    wait_for_host_state("Lunch")
    expect(select).to_have_value("Lunch")
    assert state_of(from_server[-1]) == "Lunch" and version_of(from_server[-1]) > version_of(on_break)
    host_matches_server()
    assert host_updates()[-2:] == ["Break", "Lunch"]
