"""CCP sockets of an agent, known to every process: LOGIN and LOGOUT events, and the
MultipleCcpWindows error when the agent's CCP is open in two sessions (two browsers).

A socket row whose process died without closing it goes stale: heartbeats (every 20 s from
the CCP page) keep live rows fresh, and rows unseen for STALE_AFTER are ignored and purged."""

import contextlib
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from ccphost.engine.core import SAVE_EVENT_SNAPSHOT, Changes, engine_change, engine_lock, settle
from ccphost.engine.events import agent_event_snapshot, record_agent_event
from ccphost.engine.models import Agent, CcpSocket
from ccphost.engine.prepared import PreparedQuery, placeholders
from ccphost.engine.snapshots import agent_frame

MULTIPLE_WINDOWS = "MultipleCcpWindows"
AGENT_SOCKETS = PreparedQuery(lambda agent_pk: CcpSocket.objects.filter(agent_id=agent_pk))
STALE_AFTER = timedelta(minutes=3)
TOUCH_EVERY = timedelta(minutes=1)


def open_ccp_socket(agent: Agent, channel_name: str, session_key: str) -> dict[str, Any]:
    """Record the socket (LOGIN on the agent's first) and return its first snapshot frame.

    Only a second session changes what the agent's CCP shows (MultipleCcpWindows): the
    common case, a socket row and maybe a LOGIN event, skips routing and the snapshot push.
    Either way it concerns the agent alone: the agent's lock, not the instance's (core)."""
    with engine_lock(agent.instance, agent_pk=agent.pk) as changes:
        agent = changes.agent(agent.pk)
        fresh_after = changes.now - STALE_AFTER
        rows = AGENT_SOCKETS(agent.pk)
        if stale := [row.pk for row in rows if row.last_seen < fresh_after]:
            CcpSocket.objects.filter(pk__in=stale).delete()
        fresh = [row.session_key for row in rows if row.pk not in stale and row.channel_name != channel_name]
        if any(row.channel_name == channel_name for row in rows):
            CcpSocket.objects.filter(channel_name=channel_name).update(session_key=session_key, last_seen=changes.now)
        else:
            CcpSocket.objects.create(agent=agent, channel_name=channel_name, session_key=session_key)
        legs = changes.open_legs(agent)
        if not fresh:
            record_agent_event(changes, agent, "LOGIN", agent_event_snapshot(agent, changes, legs))
            SAVE_EVENT_SNAPSHOT(agent)
        elif any(key != session_key for key in fresh):
            agent.error_state = MULTIPLE_WINDOWS
            legs = settle(changes)[agent.pk]
        return agent_frame(agent, legs, changes.settings)


def close_ccp_socket(agent: Agent, channel_name: str) -> None:
    """Forget the agent's socket (LOGOUT on the agent's last); under the agent's lock, unless
    closing it ends MultipleCcpWindows and makes the agent routable again.

    ``agent``: as the socket's consumer read it when it opened (with its instance). Its socket
    rows are read with a prepared query and the row deleted by its key: the ORM's lookup,
    ``delete()`` and ``exists()`` made a close cost three times an open, and thousands of
    sockets closing at once (a network drop) held the engine's thread for minutes at 10,000
    (bench.run's ccp_sockets_closed). A socket gone already (purged as stale, or with its
    agent) is left at that."""

    def close(changes: Changes) -> None:
        locked = changes.agent(agent.pk)
        rows = AGENT_SOCKETS(agent.pk)
        mine = [row.pk for row in rows if row.channel_name == channel_name]
        if not mine:
            return
        delete_sockets(mine)
        fresh_after = changes.now - STALE_AFTER
        remaining = [row for row in rows if row.pk not in mine and row.last_seen >= fresh_after]
        if not remaining:
            record_agent_event(changes, locked, "LOGOUT")
            SAVE_EVENT_SNAPSHOT(locked)
        if locked.error_state == MULTIPLE_WINDOWS and len({row.session_key for row in remaining}) <= 1:
            locked.error_state = ""
            settle(changes)

    with contextlib.suppress(Agent.DoesNotExist):  # deleted since: its rows went with it
        engine_change(agent.instance, close, agent_pk=agent.pk, settled=False)


def delete_sockets(pks: list[int]) -> None:
    """Delete socket rows by key, without the ORM's deletion collector (nothing refers to
    a socket row, and it has no signals)."""
    quote, meta = connection.ops.quote_name, CcpSocket._meta
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} IN ({placeholders(len(pks))})",  # noqa: S608 (names and placeholders)
            pks,
        )


def ccp_socket_alive(channel_name: str) -> None:
    """A heartbeat: keep the socket's row fresh (written at most once a minute)."""
    now = timezone.now()
    CcpSocket.objects.filter(channel_name=channel_name, last_seen__lt=now - TOUCH_EVERY).update(last_seen=now)


def record_heartbeat(agent: Agent) -> None:
    """A HEART_BEAT event: the agent's lock alone, and no new snapshot (nothing it shows changed)."""
    with engine_lock(agent.instance, agent_pk=agent.pk) as changes:
        agent = changes.agent(agent.pk)
        record_agent_event(changes, agent, "HEART_BEAT")
        SAVE_EVENT_SNAPSHOT(agent)
