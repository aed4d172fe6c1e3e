"""The engine's admin: pages render, actions simulate through the services, logs are read-only."""

import pytest
from django.urls import reverse

from ccphost.engine.models import Agent, AgentState, Contact, EngineEvent, Queue

pytestmark = pytest.mark.django_db

MODELS = ["instancesettings", "agentstate", "queue", "routingprofile", "quickconnect", "agent", "contact", "timer"]


@pytest.fixture
def admin_client_(client, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", None)  # no hashing: fast
    client.force_login(boss)
    return client


@pytest.mark.parametrize("model", [*MODELS, "engineevent"])
def test_changelists_render(admin_client_, center, ada, basic_queue, model):
    from tests.engine.conftest import call

    call(center, basic_queue)
    assert admin_client_.get(reverse(f"admin:engine_{model}_changelist")).status_code == 200


def test_event_log_is_read_only(admin_client_, center, ada):
    event = EngineEvent.objects.filter(instance=center).first()
    assert admin_client_.get(reverse("admin:engine_engineevent_add")).status_code == 403
    page = admin_client_.get(reverse("admin:engine_engineevent_change", args=[event.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert (
        admin_client_.post(reverse("admin:engine_engineevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )


def test_simulate_inbound_call_action(admin_client_, center, ada, basic_queue):
    response = admin_client_.post(
        reverse("admin:engine_queue_changelist"),
        {"action": "simulate_inbound_call", "_selected_action": [basic_queue.pk]},
        follow=True,
    )
    assert response.status_code == 200
    contact = Contact.objects.get()
    assert (contact.queue, contact.agent, contact.attributes) == (basic_queue, ada, {"source": "admin"})


def test_customer_hangs_up_action(admin_client_, center, ada, basic_queue):
    from tests.engine.conftest import call

    contact = call(center, basic_queue)
    admin_client_.post(
        reverse("admin:engine_contact_changelist"),
        {"action": "customer_hangs_up", "_selected_action": [contact.pk]},
    )
    assert Contact.objects.get().state == "ended"


def test_agent_actions_and_add(admin_client_, center, make_agent, django_user_model):
    bob = make_agent("bob", available=False)
    admin_client_.post(
        reverse("admin:engine_agent_changelist"), {"action": "make_available", "_selected_action": [bob.pk]}
    )
    assert Agent.objects.get(pk=bob.pk).state_name == "Available"
    user = django_user_model.objects.create_user("cy")
    profile = bob.routing_profile
    response = admin_client_.post(
        reverse("admin:engine_agent_add"),
        {
            "instance": center.pk,
            "user": user.pk,
            "routing_profile": profile.pk,
            "softphone_enabled": "on",
            "extension": "",
            "language": "en_US",
            "permissions": '["outboundCall"]',
            "dialable_countries": '["us"]',
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert Agent.objects.get(user=user).state_name == "Offline"


def test_editing_a_state_pushes_new_configurations(admin_client_, center, ada):
    lunch = AgentState.objects.get(instance=center, name="Lunch")
    version = Agent.objects.get(pk=ada.pk).snapshot_version
    response = admin_client_.post(
        reverse("admin:engine_agentstate_change", args=[lunch.pk]),
        {"instance": center.pk, "name": "Long lunch", "type": "not_routable", "enabled": "on", "position": 3},
    )
    assert response.status_code == 302
    assert Agent.objects.get(pk=ada.pk).snapshot_version == version + 1
    assert Queue.objects.count() == 1


def test_admin_edit_of_an_agent_keeps_its_live_state(admin_client_, center, ada, basic_queue):
    from tests.engine.conftest import call

    page = admin_client_.get(reverse("admin:engine_agent_change", args=[ada.pk]))
    assert page.status_code == 200
    call(center, basic_queue)  # the agent's state moves on while the form is open
    response = admin_client_.post(
        reverse("admin:engine_agent_change", args=[ada.pk]),
        {
            "instance": center.pk,
            "user": ada.user.pk,
            "routing_profile": ada.routing_profile.pk,
            "softphone_enabled": "on",
            "extension": "",
            "language": "fr_FR",
            "permissions": '["outboundCall"]',
            "dialable_countries": '["us"]',
        },
    )
    assert response.status_code == 302
    agent = Agent.objects.get(pk=ada.pk)
    assert (agent.language, agent.state_name) == ("fr_FR", "PendingBusy")


def test_an_instance_goes_with_its_contact_center_and_its_origins_removal_is_audited(
    admin_client_, center, ada, basic_queue
):
    """Deleting an instance in the admin takes everything under it, a call in progress too;
    its origins' removal is in the audit log, by whom and from where."""
    from ccphost.instances.models import ApprovedOrigin, Instance, OriginAudit
    from ccphost.instances.services import Actor, approve_origins
    from tests.engine.conftest import call

    approve_origins(center, ["https://crm.example.com"], Actor(source="command", name="setup"))
    call(center, basic_queue)
    url = reverse("admin:instances_instance_delete", args=[center.pk])
    page = admin_client_.get(url)
    assert page.status_code == 200 and b"Are you sure" in page.content, page.content.decode()[:3000]
    assert admin_client_.post(url, {"post": "yes"}, REMOTE_ADDR="203.0.113.9").status_code == 302
    assert not Instance.objects.exists()
    for model in (Agent, AgentState, Queue, Contact, EngineEvent, ApprovedOrigin):
        assert not model.objects.exists(), model
    removed = OriginAudit.objects.get(action="removed")
    assert (removed.instance, removed.instance_alias, removed.old_value) == (None, "acme", "https://crm.example.com")
    assert (removed.actor_name, removed.source, removed.remote_addr) == ("boss", "admin", "203.0.113.9")


def test_the_instances_bulk_delete_action_audits_each_origin(admin_client_, center, ada):
    from ccphost.instances.models import Instance, OriginAudit
    from ccphost.instances.services import Actor, approve_origins

    approve_origins(center, ["https://a.example.com", "https://b.example.com"], Actor(source="command", name="x"))
    response = admin_client_.post(
        reverse("admin:instances_instance_changelist"),
        {"action": "delete_selected", "_selected_action": [center.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Instance.objects.exists() and not Agent.objects.exists()
    assert sorted(OriginAudit.objects.filter(action="removed").values_list("old_value", flat=True)) == [
        "https://a.example.com",
        "https://b.example.com",
    ]


def test_a_state_in_use_cannot_be_deleted(admin_client_, center, ada):
    """An agent's status is not deleted from under it: the admin names what holds it."""
    available = AgentState.objects.get(instance=center, name="Available")
    url = reverse("admin:engine_agentstate_delete", args=[available.pk])
    page = admin_client_.get(url)
    assert page.status_code == 200 and b"protected related objects" in page.content
    admin_client_.post(url, {"post": "yes"})
    assert AgentState.objects.filter(pk=available.pk).exists()
