"""The admin: instances with inline origins saved through the services, and the audit log."""

import re
from collections.abc import Collection, Sequence

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from ccphost.instances.models import ApprovedOrigin, Instance, OriginAudit
from ccphost.instances.services import Actor, approve_origins

ADD_URL = "/admin/instances/instance/add/"
COMMAND = Actor(source="command", name="setup")
CLIENT_ADDR = "203.0.113.50"


def change_url(instance: Instance) -> str:
    return f"/admin/instances/instance/{instance.pk}/change/"


@pytest.fixture
def client(admin_user) -> Client:
    client = Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR=CLIENT_ADDR)
    client.force_login(admin_user)
    return client


def instance_fields(**overrides: str) -> dict[str, str]:
    fields = {
        "alias": "globex",
        "name": "Globex Support",
        "kind": "hosted",
        "ccp_url": "",
        "aws_region": "",
        "aws_instance_id": "",
        "login_popup": "on",
        "login_popup_auto_close": "on",
        "login_url": "",
        "allow_framed_softphone": "on",
        "ringtone_url": "",
        "ccp_width": "320",
        "ccp_height": "465",
        "_save": "Save",
    }
    fields.update(overrides)
    return fields


def origin_forms(
    instance: Instance | None = None,
    new: Sequence[str] = (),
    changed: dict[str, str] | None = None,
    deleted: Collection[str] = (),
) -> dict[str, str]:
    """The inline formset as the admin page posts it: the saved rows first, then new ones."""
    changed = changed or {}
    rows = list(instance.origins.order_by("origin")) if instance else []
    data = {
        "origins-TOTAL_FORMS": str(len(rows) + len(new)),
        "origins-INITIAL_FORMS": str(len(rows)),
        "origins-MIN_NUM_FORMS": "0",
        "origins-MAX_NUM_FORMS": "100",
    }
    for index, row in enumerate(rows):
        data[f"origins-{index}-id"] = str(row.pk)
        data[f"origins-{index}-instance"] = str(instance.pk) if instance else ""
        data[f"origins-{index}-origin"] = changed.get(row.origin, row.origin)
        if row.origin in deleted:
            data[f"origins-{index}-DELETE"] = "on"
    for index, origin in enumerate(new, start=len(rows)):
        data[f"origins-{index}-id"] = ""
        data[f"origins-{index}-instance"] = str(instance.pk) if instance else ""
        data[f"origins-{index}-origin"] = origin
    return data


def audit_rows() -> list[tuple[str, str, str]]:
    return [(a.action, a.old_value, a.new_value) for a in OriginAudit.objects.order_by("id")]


def form_errors(response) -> dict[str, list[str]]:
    return {name: list(errors) for name, errors in response.context["adminform"].form.errors.items()}


def inline_errors(response) -> tuple[list[dict], list[str]]:
    formset = response.context["inline_admin_formsets"][0].formset
    return formset.errors, list(formset.non_form_errors())


def test_add_instance_with_inline_origins_writes_admin_audit_rows(client, admin_user):
    data = instance_fields() | origin_forms(new=["https://CRM.Globex.example/", "https://Bücher.example:8443"])

    response = client.post(ADD_URL, data)

    assert response.status_code == 302, form_errors(response)
    globex = Instance.objects.get(alias="globex")
    assert sorted(globex.origins.values_list("origin", flat=True)) == [
        "https://crm.globex.example",
        "https://xn--bcher-kva.example:8443",
    ]
    assert set(audit_rows()) == {
        ("added", "", "https://crm.globex.example"),
        ("added", "", "https://xn--bcher-kva.example:8443"),
    }
    for audit in OriginAudit.objects.all():
        assert (audit.source, audit.actor, audit.actor_name) == ("admin", admin_user, "root")
        assert audit.remote_addr == CLIENT_ADDR
        assert audit.instance == globex
    assert all(row.created_by == admin_user for row in globex.origins.all())


def test_changing_an_origin_in_the_admin_writes_a_changed_audit_row(client, instance, admin_user):
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    data = instance_fields(name="Acme Support") | origin_forms(
        instance, changed={"https://a.example.com": "https://A2.example.com:443"}
    )

    response = client.post(change_url(instance), data)

    assert response.status_code == 302, form_errors(response)
    assert sorted(instance.origins.values_list("origin", flat=True)) == [
        "https://a2.example.com",
        "https://b.example.com",
    ]
    audit = OriginAudit.objects.get(source="admin")
    assert (audit.action, audit.old_value, audit.new_value) == (
        "changed",
        "https://a.example.com",
        "https://a2.example.com",
    )
    assert (audit.actor, audit.remote_addr) == (admin_user, CLIENT_ADDR)


def test_deleting_an_origin_in_the_admin_writes_a_removed_audit_row(client, instance, admin_user):
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    data = instance_fields() | origin_forms(instance, deleted={"https://b.example.com"})

    response = client.post(change_url(instance), data)

    assert response.status_code == 302, form_errors(response)
    assert list(instance.origins.values_list("origin", flat=True)) == ["https://a.example.com"]
    audit = OriginAudit.objects.get(source="admin")
    assert (audit.action, audit.old_value, audit.new_value) == ("removed", "https://b.example.com", "")
    assert (audit.actor, audit.remote_addr) == (admin_user, CLIENT_ADDR)


def test_saving_unchanged_origins_writes_no_audit_rows(client, instance):
    approve_origins(instance, ["https://a.example.com"], COMMAND)
    response = client.post(change_url(instance), instance_fields(name="Renamed") | origin_forms(instance))
    assert response.status_code == 302, form_errors(response)
    assert Instance.objects.get(pk=instance.pk).name == "Renamed"
    assert not OriginAudit.objects.filter(source="admin").exists()


def test_remove_one_origin_and_rename_another_to_it_in_one_save(client, instance):
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    data = instance_fields() | origin_forms(
        instance,
        changed={"https://a.example.com": "https://b.example.com"},
        deleted={"https://b.example.com"},
    )
    response = client.post(change_url(instance), data)
    assert response.status_code == 302, inline_errors(response)
    assert list(instance.origins.values_list("origin", flat=True)) == ["https://b.example.com"]


def test_bad_origin_shows_the_normalizer_message_on_the_field_and_saves_nothing(client):
    data = instance_fields() | origin_forms(new=["https://good.example.com", "https://bad.example.com/path"])

    response = client.post(ADD_URL, data)

    assert response.status_code == 200
    errors, _ = inline_errors(response)
    assert errors[0] == {}
    assert "cannot have a path ('/path')" in errors[1]["origin"][0]
    assert b"cannot have a path" in response.content
    assert not Instance.objects.filter(alias="globex").exists()
    assert not ApprovedOrigin.objects.exists()
    assert not OriginAudit.objects.exists()


def test_duplicate_origins_after_normalization_are_refused(client, instance):
    approve_origins(instance, ["https://a.example.com"], COMMAND)
    data = instance_fields() | origin_forms(instance, new=["HTTPS://A.EXAMPLE.COM:443/"])

    response = client.post(change_url(instance), data)

    assert response.status_code == 200
    _, non_form = inline_errors(response)
    assert non_form == ["Each origin can be approved once; given twice (after normalization): https://a.example.com."]
    assert instance.origins.count() == 1
    assert not OriginAudit.objects.filter(source="admin").exists()


def test_hundred_and_one_origins_are_refused(client):
    origins = [f"https://crm{n}.example.com" for n in range(101)]

    response = client.post(ADD_URL, instance_fields() | origin_forms(new=origins))

    assert response.status_code == 200
    _, non_form = inline_errors(response)
    assert non_form == ["An instance can have at most 100 approved origins; this would make 101."]
    assert not Instance.objects.filter(alias="globex").exists()
    assert not ApprovedOrigin.objects.exists()


def test_hundred_origins_are_accepted(client):
    origins = [f"https://crm{n}.example.com" for n in range(100)]
    response = client.post(ADD_URL, instance_fields() | origin_forms(new=origins))
    assert response.status_code == 302, inline_errors(response)
    assert Instance.objects.get(alias="globex").origins.count() == 100
    assert OriginAudit.objects.filter(source="admin", action="added").count() == 100


def test_a_refusal_by_the_services_at_save_time_rolls_back_everything(client, instance, monkeypatch):
    # As if another admin approved origins between the form check and the save.
    from ccphost.instances import admin as instances_admin
    from ccphost.instances.services import OriginChangeError

    def refuse(*args, **kwargs):
        raise OriginChangeError("An instance can have at most 100 approved origins; this would make 101.")

    monkeypatch.setattr(instances_admin, "approve_origins", refuse)
    data = instance_fields(name="Renamed") | origin_forms(instance, new=["https://new.example.com"])

    response = client.post(change_url(instance), data, follow=True)

    assert response.redirect_chain == [(change_url(instance), 302)]
    shown = [str(m) for m in response.context["messages"]]
    assert shown == ["Nothing was saved: An instance can have at most 100 approved origins; this would make 101."]
    assert Instance.objects.get(pk=instance.pk).name == "Acme Support"
    assert not instance.origins.exists()


def test_alias_is_read_only_after_creation(client, instance):
    response = client.post(change_url(instance), instance_fields(alias="renamed") | origin_forms(instance))
    assert response.status_code == 302
    assert Instance.objects.get(pk=instance.pk).alias == "acme"
    page = client.get(change_url(instance)).content.decode()
    assert 'name="alias"' not in page
    assert 'name="alias"' in client.get(ADD_URL).content.decode()


def test_instance_admin_lists_and_searches(client, instance):
    Instance.objects.create(alias="globex", name="Globex Support")
    response = client.get("/admin/instances/instance/", {"q": "globex"})
    assert response.status_code == 200
    assert [i.alias for i in response.context["cl"].result_list] == ["globex"]
    assert (
        client.get("/admin/instances/instance/", {"kind__exact": "hosted", "login_popup__exact": "1"}).status_code
        == 200
    )


@pytest.fixture
def staff_client(db, django_user_model, instance):
    """Staff who may change instances but has no permission on approved origins."""
    user = django_user_model.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_instance", "change_instance"], content_type__app_label="instances"
        )
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def test_staff_without_origin_permissions_cannot_alter_origins(staff_client, instance):
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    page = staff_client.get(change_url(instance))
    assert page.status_code == 200
    assert b"origins-TOTAL_FORMS" not in page.content
    data = instance_fields(name="Renamed by staff") | origin_forms(
        instance,
        new=["https://evil.example.com"],
        changed={"https://a.example.com": "https://evil2.example.com"},
        deleted={"https://b.example.com"},
    )

    response = staff_client.post(change_url(instance), data)

    assert response.status_code == 302
    assert Instance.objects.get(pk=instance.pk).name == "Renamed by staff"
    assert sorted(instance.origins.values_list("origin", flat=True)) == [
        "https://a.example.com",
        "https://b.example.com",
    ]
    assert not OriginAudit.objects.filter(source="admin").exists()


def test_staff_who_may_only_view_origins_cannot_alter_them(staff_client, instance, django_user_model):
    user = django_user_model.objects.get(username="staff")
    user.user_permissions.add(Permission.objects.get(codename="view_approvedorigin"))
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    page = staff_client.get(change_url(instance))
    assert b"https://a.example.com" in page.content
    assert b'name="origins-0-origin"' not in page.content
    data = instance_fields() | origin_forms(
        instance,
        new=["https://evil.example.com"],
        changed={"https://a.example.com": "https://evil2.example.com"},
        deleted={"https://b.example.com"},
    )

    response = staff_client.post(change_url(instance), data)

    assert response.status_code == 302
    assert sorted(instance.origins.values_list("origin", flat=True)) == [
        "https://a.example.com",
        "https://b.example.com",
    ]
    assert not OriginAudit.objects.filter(source="admin").exists()


def test_origin_audit_admin_is_read_only(client, instance):
    approve_origins(instance, ["https://a.example.com"], COMMAND)
    audit = OriginAudit.objects.get()
    base = "/admin/instances/originaudit/"

    listing = client.get(base)
    assert listing.status_code == 200
    assert b"https://a.example.com" in listing.content
    assert b"Add origin audit entry" not in listing.content
    assert client.get(base, {"action__exact": "added", "source__exact": "command"}).status_code == 200
    assert client.get(base, {"q": "a.example"}).status_code == 200

    view = client.get(f"{base}{audit.pk}/change/")
    assert view.status_code == 200
    assert b'name="_save"' not in view.content

    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}add/", {"action": "added", "instance_alias": "x"}).status_code == 403
    assert client.post(f"{base}{audit.pk}/change/", {"new_value": "https://evil.example"}).status_code == 403
    assert client.post(f"{base}{audit.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = client.post(base, {"action": "delete_selected", "_selected_action": [audit.pk], "post": "yes"})
    assert bulk.status_code in (200, 302)
    assert OriginAudit.objects.get(pk=audit.pk).new_value == "https://a.example.com"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"ccp_width": "199"}, "ccp_width", "The CCP is 200 to 320 px wide"),
        ({"ccp_width": "321"}, "ccp_width", "The CCP is 200 to 320 px wide"),
        ({"ccp_width": "220", "ccp_height": "399"}, "ccp_height", "compact CCP (220 px wide) needs a height of 400"),
        ({"ccp_width": "221", "ccp_height": "400"}, "ccp_height", "standard CCP (221 px wide) needs a height of 465"),
        ({"ccp_width": "320", "ccp_height": "1201"}, "ccp_height", "to 1200 px"),
        ({"kind": "amazon_connect"}, "ccp_url", "needs its CCP URL"),
        ({"kind": "amazon_connect"}, "aws_region", "AWS region"),
        ({"kind": "amazon_connect"}, "aws_instance_id", "instance id"),
        (
            {"kind": "amazon_connect", "ccp_url": "https://example.awsapps.example.com/ccp-v2/"},
            "ccp_url",
            "my.connect.aws",
        ),
        ({"kind": "amazon_connect", "ccp_url": "https://evil.example.com/ccp-v2/"}, "ccp_url", "my.connect.aws"),
        ({"ccp_url": "https://acme.my.connect.aws/ccp-v2/"}, "ccp_url", "Only Amazon Connect instances"),
        ({"alias": "Bad_Alias"}, "alias", "lowercase letters, digits and hyphens"),
    ],
)
def test_instance_validation_errors_appear_on_their_fields(client, overrides, field, message):
    response = client.post(ADD_URL, instance_fields(**overrides) | origin_forms())
    assert response.status_code == 200
    errors = form_errors(response)
    assert any(re.search(re.escape(message), e) for e in errors.get(field, [])), errors
    assert not Instance.objects.filter(alias="globex").exists()


def test_compact_ccp_accepts_its_lower_height(client):
    response = client.post(ADD_URL, instance_fields(ccp_width="200", ccp_height="400") | origin_forms())
    assert response.status_code == 302, form_errors(response)
    assert Instance.objects.get(alias="globex").is_compact


def test_valid_amazon_connect_instance_is_saved(client):
    fields = instance_fields(
        kind="amazon_connect",
        ccp_url="https://globex.my.connect.aws/ccp-v2/",
        aws_region="eu-west-2",
        aws_instance_id="6c1f9a4e-0d3b-4d7e-9a55-3b7f1e2c8d90",
    )
    response = client.post(ADD_URL, fields | origin_forms())
    assert response.status_code == 302, form_errors(response)
    assert Instance.objects.get(alias="globex").kind == "amazon_connect"


def test_chained_renames_are_applied_in_an_order_that_works(client, instance):
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    data = instance_fields() | origin_forms(
        instance,
        changed={"https://a.example.com": "https://b.example.com", "https://b.example.com": "https://c.example.com"},
    )
    response = client.post(change_url(instance), data)
    assert response.status_code == 302, inline_errors(response)
    assert sorted(instance.origins.values_list("origin", flat=True)) == [
        "https://b.example.com",
        "https://c.example.com",
    ]
    assert audit_rows()[-2:] == [
        ("changed", "https://b.example.com", "https://c.example.com"),
        ("changed", "https://a.example.com", "https://b.example.com"),
    ]


def test_swapping_two_origins_in_one_save_is_refused_with_a_clear_message(client, instance):
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    data = instance_fields() | origin_forms(
        instance,
        changed={"https://a.example.com": "https://b.example.com", "https://b.example.com": "https://a.example.com"},
    )
    response = client.post(change_url(instance), data)
    assert response.status_code == 200
    _, non_form = inline_errors(response)
    assert non_form[0].startswith("These origins swap values")
    assert not OriginAudit.objects.filter(source="admin").exists()


def test_staff_who_may_only_change_origins_cannot_add_or_delete_them(staff_client, instance, django_user_model):
    user = django_user_model.objects.get(username="staff")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_approvedorigin", "change_approvedorigin"]))
    approve_origins(instance, ["https://a.example.com", "https://b.example.com"], COMMAND)
    data = instance_fields() | origin_forms(
        instance,
        new=["https://evil.example.com"],
        changed={"https://a.example.com": "https://a2.example.com"},
        deleted={"https://b.example.com"},
    )

    response = staff_client.post(change_url(instance), data)

    assert response.status_code == 302, inline_errors(response)
    assert sorted(instance.origins.values_list("origin", flat=True)) == [
        "https://a2.example.com",
        "https://b.example.com",
    ]
    assert audit_rows()[-1] == ("changed", "https://a.example.com", "https://a2.example.com")
    assert OriginAudit.objects.get(source="admin").actor_name == "staff"


def test_empty_frame_size_is_a_field_error_not_a_crash(client):
    response = client.post(ADD_URL, instance_fields(ccp_width="", ccp_height="") | origin_forms())
    assert response.status_code == 200
    errors = form_errors(response)
    assert errors["ccp_width"] == ["This field is required."]
    assert errors["ccp_height"] == ["This field is required."]
