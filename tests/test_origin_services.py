"""The origin services: limits, uniqueness, audit rows, all-or-nothing, cache invalidation."""

import re

import pytest

from ccphost.instances.models import ApprovedOrigin, OriginAudit
from ccphost.instances.services import (
    Actor,
    OriginChangeError,
    approve_origins,
    approved_origins,
    change_origin,
    is_origin_approved,
    replace_origins,
    revoke_origins,
)

COMMAND = Actor(source="command", name="tester")


def origins_of(instance) -> list[str]:
    return sorted(instance.origins.values_list("origin", flat=True))


def numbered(start: int, stop: int) -> list[str]:
    return [f"https://crm{n}.example.com" for n in range(start, stop)]


def test_hundredth_origin_is_accepted_and_hundred_and_first_refused(instance):
    approve_origins(instance, numbered(0, 99), COMMAND)
    approve_origins(instance, numbered(99, 100), COMMAND)
    assert instance.origins.count() == 100
    audits_before = OriginAudit.objects.count()

    with pytest.raises(OriginChangeError, match="at most 100 approved origins; this would make 101"):
        approve_origins(instance, numbered(100, 101), COMMAND)

    assert instance.origins.count() == 100
    assert "https://crm100.example.com" not in origins_of(instance)
    assert OriginAudit.objects.count() == audits_before


def test_more_than_the_limit_at_once_adds_none(instance):
    with pytest.raises(OriginChangeError, match="at most 100"):
        approve_origins(instance, numbered(0, 101), COMMAND)
    assert instance.origins.count() == 0
    assert not OriginAudit.objects.exists()


def test_replace_refuses_more_than_the_limit(instance):
    approve_origins(instance, ["https://keep.example.com"], COMMAND)
    with pytest.raises(OriginChangeError, match="at most 100"):
        replace_origins(instance, numbered(0, 101), COMMAND)
    assert origins_of(instance) == ["https://keep.example.com"]


def test_duplicates_after_normalization_are_refused(instance):
    with pytest.raises(OriginChangeError, match="given twice"):
        approve_origins(instance, ["https://CRM.example.com", "https://crm.example.com:443/"], COMMAND)
    assert instance.origins.count() == 0


def test_an_origin_already_approved_in_another_spelling_is_refused(instance):
    approve_origins(instance, ["https://crm.example.com"], COMMAND)
    with pytest.raises(OriginChangeError, match=re.escape("Already approved for acme: https://crm.example.com")):
        approve_origins(instance, ["https://new.example.com", "HTTPS://CRM.EXAMPLE.COM:443"], COMMAND)
    assert origins_of(instance) == ["https://crm.example.com"]


def test_one_bad_origin_refuses_the_whole_batch_and_names_it(instance):
    with pytest.raises(OriginChangeError, match=r"'https://bad\.example\.com/path'.*cannot have a path"):
        approve_origins(instance, ["https://good.example.com", "https://bad.example.com/path"], COMMAND)
    assert instance.origins.count() == 0


def test_approve_writes_an_audit_row_per_origin_with_actor(instance, admin_user):
    actor = Actor(source="admin", user=admin_user, remote_addr="203.0.113.7")
    created = approve_origins(instance, ["https://b.example.com", "https://A.example.com"], actor)

    assert [row.origin for row in created] == ["https://b.example.com", "https://a.example.com"]
    assert all(row.created_by == admin_user for row in created)
    rows = OriginAudit.objects.order_by("id")
    assert [(r.action, r.old_value, r.new_value) for r in rows] == [
        ("added", "", "https://b.example.com"),
        ("added", "", "https://a.example.com"),
    ]
    for row in rows:
        assert row.instance == instance
        assert row.instance_alias == "acme"
        assert row.actor == admin_user
        assert row.actor_name == "root"
        assert row.source == "admin"
        assert row.remote_addr == "203.0.113.7"


def test_change_writes_one_changed_audit_row(instance, admin_user):
    approve_origins(instance, ["https://old.example.com"], COMMAND)
    actor = Actor(source="admin", user=admin_user, remote_addr="198.51.100.1")

    row = change_origin(instance, "https://old.example.com", "https://NEW.example.com:8443", actor)

    assert row.origin == "https://new.example.com:8443"
    assert origins_of(instance) == ["https://new.example.com:8443"]
    audit = OriginAudit.objects.get(action="changed")
    assert (audit.old_value, audit.new_value) == ("https://old.example.com", "https://new.example.com:8443")
    assert (audit.actor, audit.source, audit.remote_addr) == (admin_user, "admin", "198.51.100.1")


def test_change_to_an_origin_already_approved_is_refused(instance):
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    with pytest.raises(OriginChangeError, match="Already approved"):
        change_origin(instance, "https://a.example.com", "https://b.example.com", COMMAND)
    assert origins_of(instance) == ["https://a.example.com", "https://b.example.com"]
    assert not OriginAudit.objects.filter(action="changed").exists()


def test_revoke_writes_removed_audit_rows_with_the_command_actor(instance):
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)

    removed = revoke_origins(instance, ["https://A.example.com/"], COMMAND)

    assert removed == ["https://a.example.com"]
    assert origins_of(instance) == ["https://b.example.com"]
    audit = OriginAudit.objects.get(action="removed")
    assert (audit.old_value, audit.new_value) == ("https://a.example.com", "")
    assert (audit.actor, audit.actor_name, audit.source, audit.remote_addr) == (None, "tester", "command", None)


def test_revoke_of_an_origin_not_approved_changes_nothing(instance):
    approve_origins(instance, ["https://a.example.com"], COMMAND)
    audits_before = OriginAudit.objects.count()

    with pytest.raises(OriginChangeError, match=re.escape("Not approved for acme: https://b.example.com")):
        revoke_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)

    assert origins_of(instance) == ["https://a.example.com"]
    assert OriginAudit.objects.count() == audits_before


def test_empty_change_is_refused(instance):
    with pytest.raises(OriginChangeError, match="at least one"):
        approve_origins(instance, [], COMMAND)
    with pytest.raises(OriginChangeError, match="at least one"):
        revoke_origins(instance, [], COMMAND)


def test_replace_reports_added_and_removed(instance):
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    added, removed = replace_origins(instance, ["https://b.example.com", "https://c.example.com"], COMMAND)
    assert (added, removed) == (["https://c.example.com"], ["https://a.example.com"])
    assert origins_of(instance) == ["https://b.example.com", "https://c.example.com"]


def test_approved_origins_cache_is_invalidated_after_commit(instance, django_capture_on_commit_callbacks):
    assert approved_origins("acme") == frozenset()  # now cached

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        approve_origins(instance, ["https://crm.example.com"], COMMAND)
    assert callbacks
    assert approved_origins("acme") == {"https://crm.example.com"}
    assert is_origin_approved("acme", "https://CRM.example.com")

    with django_capture_on_commit_callbacks(execute=True):
        change_origin(instance, "https://crm.example.com", "https://crm2.example.com", COMMAND)
    assert approved_origins("acme") == {"https://crm2.example.com"}

    with django_capture_on_commit_callbacks(execute=True):
        revoke_origins(instance, ["https://crm2.example.com"], COMMAND)
    assert approved_origins("acme") == frozenset()
    assert not is_origin_approved("acme", "https://crm2.example.com")


def test_cache_is_not_invalidated_before_commit(instance, django_capture_on_commit_callbacks):
    assert approved_origins("acme") == frozenset()
    with django_capture_on_commit_callbacks(execute=False):
        approve_origins(instance, ["https://crm.example.com"], COMMAND)
    # The transaction has not committed yet, so readers keep the last committed set.
    assert approved_origins("acme") == frozenset()


def test_deleting_the_instance_forgets_its_cached_origins(instance, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        approve_origins(instance, ["https://crm.example.com"], COMMAND)
    assert approved_origins("acme") == {"https://crm.example.com"}
    with django_capture_on_commit_callbacks(execute=True):
        instance.delete()
    assert approved_origins("acme") == frozenset()
    assert not ApprovedOrigin.objects.exists()
    assert OriginAudit.objects.filter(instance_alias="acme", instance=None).count() == 1
