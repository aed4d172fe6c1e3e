"""Create the bench instance with N agents and a signed-in session for each; print them as
JSON ``[[agent_pk, session_key], ...]``. Run with the benchmark mode's environment.

    python -m bench.setup_agents 1000
"""

import json
import os
import sys
from datetime import timedelta


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccphost.settings")
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"

    from ccphost.engine import seed
    from ccphost.engine.models import Agent, Contact, RoutingProfile
    from ccphost.instances.models import Instance

    count = int(sys.argv[1])
    call_command("migrate", verbosity=0)
    User = get_user_model()
    with transaction.atomic():
        # A previous run's instance: what protects its states, queues and profiles goes first.
        Contact.objects.filter(instance__alias="bench").delete()
        Agent.objects.filter(instance__alias="bench").delete()
        RoutingProfile.objects.filter(instance__alias="bench").delete()
        Instance.objects.filter(alias="bench").delete()
        User.objects.filter(username__startswith="bench-").delete()
        instance = Instance.objects.create(alias="bench", name="Benchmark")
        profile = seed.seed_instance_defaults(instance)
        users = User.objects.bulk_create([User(username=f"bench-{i:05d}", password="!") for i in range(count)])
        agents = [seed.make_agent(instance, user, profile) for user in users]
        expires = timezone.now() + timedelta(days=1)
        store = SessionStore()
        sessions = []
        for user in users:
            data = {
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                HASH_SESSION_KEY: user.get_session_auth_hash(),
            }
            sessions.append(
                Session(
                    session_key=get_random_string(32, KEY_CHARS), session_data=store.encode(data), expire_date=expires
                )
            )
        Session.objects.bulk_create(sessions)
    if connection.vendor == "postgresql":
        # A previous run's rows are deleted, not gone: a day of runs left the event log at
        # 570 MB for 12,000 live rows, and the next run 10% slower than on a fresh database,
        # so runs of the same code disagreed. (SQLite: each run has a new database.)
        # Then a checkpoint, so that writing out what VACUUM wrote is not the run's work.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM FULL ANALYZE")
            cursor.execute("CHECKPOINT")
    pairs = [[agent.pk, session.session_key] for agent, session in zip(agents, sessions, strict=True)]
    assert Agent.objects.filter(instance=instance).count() == count
    print(json.dumps(pairs))


if __name__ == "__main__":
    main()
