"""Approved origins synced to Amazon Connect (botocore's Stubber stands in for AWS: moto
lacks these calls): ccphost's origins plus its own are the truth, changes are audited."""

import uuid

import boto3
import pytest
from botocore.stub import Stubber

from ccphost.instances.models import ApprovedOrigin, Instance, OriginAudit
from ccphost.instances.services import Actor
from integrations.connect.client import OriginSyncError
from integrations.connect.sync import (
    OriginSyncPlan,
    apply_origin_sync,
    format_plan,
    plan_origin_sync,
    sync_instance_origins,
)

AWS_ID = uuid.UUID("11111111-2222-3333-4444-555555555555")
SITE = "https://ccp.example.com"
ACTOR = Actor(source="command", name="ops")


@pytest.fixture
def aws_instance(db, settings):
    settings.SITE_URL = SITE
    instance = Instance.objects.create(
        alias="acme-aws",
        name="Acme on AWS",
        kind=Instance.Kind.AMAZON_CONNECT,
        ccp_url="https://acme.my.connect.aws/ccp-v2/",
        aws_region="us-east-1",
        aws_instance_id=AWS_ID,
    )
    for origin in ("https://crm.example.com", "https://new.example.com"):
        ApprovedOrigin.objects.create(instance=instance, origin=origin)
    return instance


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("connect", region_name="us-east-1")
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
    stubber.assert_no_pending_responses()


def stub_pages(client, *pages: list[str]) -> None:
    for number, origins in enumerate(pages):
        params = {"InstanceId": str(AWS_ID)}
        response = {"Origins": origins}
        if number:
            params["NextToken"] = f"page-{number}"
        if number < len(pages) - 1:
            response["NextToken"] = f"page-{number + 1}"
        client.stubber.add_response("list_approved_origins", response, params)


def stub_change(client, operation: str, origin: str) -> None:
    client.stubber.add_response(operation, {}, {"InstanceId": str(AWS_ID), "Origin": origin})


def test_plan_reads_every_page_and_compares_with_ccphost(aws_instance, client):
    stub_pages(client, ["https://crm.example.com", "https://old.example.com"], [SITE], ["https://gone.example.com"])

    plan = plan_origin_sync(aws_instance, client)

    assert plan == OriginSyncPlan(
        to_add=["https://new.example.com"],
        to_remove=["https://gone.example.com", "https://old.example.com"],
        unchanged=["https://ccp.example.com", "https://crm.example.com"],
    )


def test_ccphost_own_origin_is_always_wanted(aws_instance, client):
    ApprovedOrigin.objects.filter(instance=aws_instance).delete()
    stub_pages(client, [])

    assert plan_origin_sync(aws_instance, client).to_add == [SITE]


def test_apply_changes_amazon_and_audits_with_source_sync(aws_instance, client):
    stub_pages(client, ["https://crm.example.com", "https://old.example.com", SITE])
    stub_change(client, "disassociate_approved_origin", "https://old.example.com")
    stub_change(client, "associate_approved_origin", "https://new.example.com")

    _, applied = sync_instance_origins(aws_instance, dry_run=False, actor=ACTOR, client=client)

    assert applied
    audits = {(a.action, a.old_value, a.new_value, a.source, a.actor_name) for a in OriginAudit.objects.all()}
    assert audits == {
        ("removed", "https://old.example.com", "", "sync", "ops"),
        ("added", "", "https://new.example.com", "sync", "ops"),
    }
    # ccphost's own origins are the truth: the sync never changes them.
    assert set(aws_instance.origins.values_list("origin", flat=True)) == {
        "https://crm.example.com",
        "https://new.example.com",
    }


def test_dry_run_calls_no_change_and_writes_no_audit(aws_instance, client):
    stub_pages(client, ["https://old.example.com"])

    plan, applied = sync_instance_origins(aws_instance, dry_run=True, actor=ACTOR, client=client)

    assert not applied
    assert plan.to_remove == ["https://old.example.com"]
    assert not OriginAudit.objects.exists()


def test_in_sync_applies_nothing(aws_instance, client):
    stub_pages(client, [SITE, "https://crm.example.com", "https://new.example.com"])

    plan, applied = sync_instance_origins(aws_instance, dry_run=False, actor=ACTOR, client=client)

    assert not applied and not plan.has_changes
    assert format_plan(plan).endswith("In sync: 3 approved origins.")


def test_format_plan_shows_the_difference():
    plan = OriginSyncPlan(to_add=["https://a.example.com"], to_remove=["https://b.example.com"], unchanged=[SITE])

    assert format_plan(plan).splitlines() == [
        "+ https://a.example.com",
        "- https://b.example.com",
        f"  {SITE}",
        "1 to add, 1 to remove, 1 unchanged.",
    ]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ThrottlingException", "throttling requests; wait a minute"),
        ("AccessDeniedException", "connect:ListApprovedOrigins"),
        ("ResourceNotFoundException", "check the instance's AWS region and Amazon Connect instance id"),
    ],
)
def test_aws_errors_become_clear_messages(aws_instance, client, code, expected):
    client.stubber.add_client_error("list_approved_origins", service_error_code=code, service_message="Nope")

    with pytest.raises(OriginSyncError) as error:
        plan_origin_sync(aws_instance, client)

    assert code in str(error.value) and expected in str(error.value)
    assert "acme-aws" in str(error.value)


def test_missing_credentials_become_a_clear_message(aws_instance, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches credentials it found before

    with pytest.raises(OriginSyncError, match="no AWS credentials found"):
        sync_instance_origins(aws_instance, dry_run=True, actor=ACTOR)


def test_partial_failure_audits_what_succeeded_and_says_what_failed(aws_instance, client):
    ApprovedOrigin.objects.filter(instance=aws_instance).delete()
    for origin in ("https://a.example.com", "https://b.example.com", "https://c.example.com"):
        ApprovedOrigin.objects.create(instance=aws_instance, origin=origin)
    stub_pages(client, ["https://old1.example.com", "https://old2.example.com"])
    stub_change(client, "disassociate_approved_origin", "https://old1.example.com")
    stub_change(client, "disassociate_approved_origin", "https://old2.example.com")
    client.stubber.add_client_error("associate_approved_origin", service_error_code="ThrottlingException")

    with pytest.raises(OriginSyncError) as error:
        sync_instance_origins(aws_instance, dry_run=False, actor=ACTOR, client=client)

    message = str(error.value)
    assert "change 3 of 6 (adding https://a.example.com)" in message
    assert "- https://old1.example.com, - https://old2.example.com" in message
    assert "Run the sync again" in message
    removed = set(OriginAudit.objects.filter(source="sync").values_list("action", "old_value"))
    assert removed == {("removed", "https://old1.example.com"), ("removed", "https://old2.example.com")}


def test_hosted_instance_is_not_synced(instance):
    with pytest.raises(OriginSyncError, match="only Amazon Connect instances"):
        sync_instance_origins(instance, dry_run=True, actor=ACTOR)


def test_apply_refuses_nothing_when_plan_empty(aws_instance, client):
    assert apply_origin_sync(aws_instance, OriginSyncPlan([], [], [SITE]), client, ACTOR) == []


def test_origins_sync_command_shows_the_difference_then_applies_it(aws_instance, client, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    monkeypatch.setattr("integrations.connect.sync.connect_client", lambda instance: client)
    stub_pages(client, ["https://crm.example.com", "https://old.example.com"])
    out = StringIO()
    call_command("origins", "sync", "acme-aws", "--dry-run", stdout=out)
    assert "+ https://new.example.com" in out.getvalue() and "- https://old.example.com" in out.getvalue()
    assert not OriginAudit.objects.filter(source="sync").exists()

    stub_pages(client, ["https://crm.example.com", "https://old.example.com"])
    client.stubber.add_response(
        "disassociate_approved_origin", {}, {"InstanceId": str(AWS_ID), "Origin": "https://old.example.com"}
    )
    for origin in (SITE, "https://new.example.com"):
        client.stubber.add_response("associate_approved_origin", {}, {"InstanceId": str(AWS_ID), "Origin": origin})
    call_command("origins", "sync", "acme-aws", stdout=StringIO())
    assert OriginAudit.objects.filter(source="sync").count() == 3


def test_origins_sync_command_reports_aws_errors_in_one_line(aws_instance, client, monkeypatch):
    from django.core.management import CommandError, call_command

    monkeypatch.setattr("integrations.connect.sync.connect_client", lambda instance: client)
    client.stubber.add_client_error("list_approved_origins", "AccessDeniedException", "not allowed")
    with pytest.raises(CommandError, match=r"AccessDenied|access"):
        call_command("origins", "sync", "acme-aws")
