"""`manage.py instance` and `manage.py origins`."""

import getpass
import re
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ccphost.instances.models import ApprovedOrigin, Instance, OriginAudit
from ccphost.instances.services import Actor, approve_origins

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def origins_of(alias: str) -> list[str]:
    return sorted(ApprovedOrigin.objects.filter(instance__alias=alias).values_list("origin", flat=True))


# instance create / list / show


def test_instance_create_hosted_with_defaults(db):
    output = run("instance", "create", "globex", "--name", "Globex Support")
    assert "Created instance globex (Globex Support)." in output
    globex = Instance.objects.get(alias="globex")
    assert (globex.kind, globex.login_popup, globex.ccp_width, globex.ccp_height) == ("hosted", True, 320, 465)


def test_instance_create_amazon_connect_with_options(db):
    instance_id = str(uuid.uuid4())
    run(
        "instance",
        "create",
        "globex",
        "--name",
        "Globex",
        "--kind",
        "amazon_connect",
        "--ccp-url",
        "https://globex.my.connect.aws/ccp-v2/",
        "--region",
        "eu-central-1",
        "--aws-instance-id",
        instance_id,
        "--login-url",
        "https://sso.globex.example/login",
        "--no-login-popup",
        "--width",
        "200",
        "--height",
        "400",
    )
    globex = Instance.objects.get(alias="globex")
    assert globex.kind == "amazon_connect"
    assert globex.ccp_url == "https://globex.my.connect.aws/ccp-v2/"
    assert globex.aws_region == "eu-central-1"
    assert str(globex.aws_instance_id) == instance_id
    assert globex.login_url == "https://sso.globex.example/login"
    assert not globex.login_popup
    assert globex.is_compact


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Alias", "--name", "x"], "alias: An alias is 1-40 lowercase letters"),
        (["acme", "--name", "Again"], "alias: Instance with this Alias already exists."),
        (["globex", "--name", "x", "--width", "199"], "ccp_width: The CCP is 200 to 320 px wide"),
        (["globex", "--name", "x", "--width", "321"], "ccp_width: The CCP is 200 to 320 px wide"),
        (["globex", "--name", "x", "--width", "300", "--height", "400"], "ccp_height: The standard CCP"),
        (
            ["globex", "--name", "x", "--kind", "amazon_connect"],
            "ccp_url: An Amazon Connect instance needs its CCP URL",
        ),
        (
            ["globex", "--name", "x", "--kind", "amazon_connect", "--ccp-url", "https://evil.example/ccp-v2/"],
            "my.connect.aws",
        ),
        (
            ["globex", "--name", "x", "--kind", "amazon_connect", "--aws-instance-id", "not-a-uuid"],
            "aws_instance_id",
        ),
        (["globex", "--name", "x", "--ccp-url", "https://globex.my.connect.aws/ccp-v2/"], "Only Amazon Connect"),
        (["globex", "--name", "x", "--kind", "other"], "invalid choice: 'other'"),
        (["globex", "--name", "x", "--width", "wide"], "invalid int value: 'wide'"),
        (["globex"], "the following arguments are required: --name"),
    ],
)
def test_instance_create_refuses_bad_input_naming_the_problem(instance, args, message):
    with pytest.raises(CommandError, match=message) as refused:
        run("instance", "create", *args)
    assert "\n" not in str(refused.value)
    assert Instance.objects.count() == 1


def test_instance_list_shows_every_instance(instance):
    Instance.objects.create(alias="globex", name="Globex Support")
    approve_origins(instance, ["https://crm.example.com"], Actor(source="command"))
    lines = run("instance", "list").splitlines()
    assert lines == ["acme\thosted\t1 origin\tAcme Support", "globex\thosted\t0 origins\tGlobex Support"]


def test_instance_show_prints_options_and_origins(instance):
    approve_origins(instance, ["https://b.example.com", "https://a.example.com"], Actor(source="command"))
    output = run("instance", "show", "acme")
    assert "Alias: acme\nName: Acme Support\nKind: hosted\n" in output
    assert "Login popup: True" in output
    assert "CCP width (px): 320\nCCP height (px): 465" in output
    assert output.endswith("Approved origins (2):\n  https://a.example.com\n  https://b.example.com\n")


def test_instance_show_of_unknown_alias_is_an_error(db):
    with pytest.raises(CommandError, match="No instance 'nobody'"):
        run("instance", "show", "nobody")


def test_instance_without_subcommand_is_an_error(db):
    with pytest.raises(CommandError, match=re.escape("required: {create,list,show,delete}")):
        run("instance")


def test_instance_delete_asks_for_yes_and_then_deletes_with_an_audit(instance, django_user_model):
    from ccphost.engine import seed

    approve_origins(instance, ["https://crm.example.com"], Actor(source="command"))
    seed.make_agent(instance, django_user_model.objects.create_user("ada"))
    with pytest.raises(CommandError, match="acme has 1 approved origin, 1 agent, 0 contacts: add --yes"):
        run("instance", "delete", "acme")
    assert Instance.objects.filter(alias="acme").exists()
    output = run("instance", "delete", "acme", "--yes")
    assert "Deleted instance acme with 1 approved origin, 1 agent, 0 contacts." in output
    assert not Instance.objects.exists()
    removed = OriginAudit.objects.get(action="removed")
    assert (removed.instance_alias, removed.old_value, removed.source) == ("acme", "https://crm.example.com", "command")
    with pytest.raises(CommandError, match="No instance 'acme'"):
        run("instance", "delete", "acme", "--yes")


# origins add / remove / list


def test_origins_add_prints_the_normalized_origins_and_audits_them(instance):
    output = run("origins", "add", "acme", "HTTPS://CRM.Example.com:443/", "https://Bücher.example:8443")

    assert output.splitlines() == [
        "+ https://crm.example.com",
        "+ https://xn--bcher-kva.example:8443",
        "Approved 2 origin(s) for acme.",
    ]
    assert origins_of("acme") == ["https://crm.example.com", "https://xn--bcher-kva.example:8443"]
    audits = list(OriginAudit.objects.order_by("id"))
    assert [(a.action, a.new_value) for a in audits] == [
        ("added", "https://crm.example.com"),
        ("added", "https://xn--bcher-kva.example:8443"),
    ]
    for audit in audits:
        assert (audit.source, audit.actor, audit.remote_addr, audit.instance) == ("command", None, None, instance)
        assert audit.actor_name == getpass.getuser()


def test_one_bad_origin_among_five_adds_none(instance):
    good = [f"https://crm{n}.example.com" for n in range(4)]

    with pytest.raises(CommandError, match=r"'https://bad\.example\.com/login'.*cannot have a path") as refused:
        run("origins", "add", "acme", *good[:2], "https://bad.example.com/login", *good[2:])

    assert str(refused.value).startswith("Nothing changed:")
    assert origins_of("acme") == []
    assert not OriginAudit.objects.exists()


def test_origins_add_refuses_an_origin_already_approved(instance):
    run("origins", "add", "acme", "https://crm.example.com")
    with pytest.raises(CommandError, match=re.escape("Already approved for acme: https://crm.example.com")):
        run("origins", "add", "acme", "https://new.example.com", "https://CRM.example.com")
    assert origins_of("acme") == ["https://crm.example.com"]


def test_origins_add_refuses_the_hundred_and_first(instance):
    run("origins", "add", "acme", *[f"https://crm{n}.example.com" for n in range(100)])
    with pytest.raises(CommandError, match="at most 100 approved origins; this would make 101"):
        run("origins", "add", "acme", "https://one-more.example.com")
    assert len(origins_of("acme")) == 100


def test_origins_remove_prints_and_audits(instance):
    run("origins", "add", "acme", "https://a.example.com", "https://b.example.com")

    output = run("origins", "remove", "acme", "https://A.example.com/")

    assert output.splitlines() == ["- https://a.example.com", "Removed 1 origin(s) from acme."]
    assert origins_of("acme") == ["https://b.example.com"]
    audit = OriginAudit.objects.get(action="removed")
    assert (audit.old_value, audit.source, audit.actor_name) == ("https://a.example.com", "command", getpass.getuser())


def test_origins_remove_of_an_origin_not_approved_removes_none(instance):
    run("origins", "add", "acme", "https://a.example.com")
    with pytest.raises(CommandError, match=re.escape("Not approved for acme: https://b.example.com")):
        run("origins", "remove", "acme", "https://a.example.com", "https://b.example.com")
    assert origins_of("acme") == ["https://a.example.com"]
    assert not OriginAudit.objects.filter(action="removed").exists()


def test_origins_list_prints_one_origin_a_line(instance):
    assert run("origins", "list", "acme") == ""
    run("origins", "add", "acme", "https://b.example.com", "https://a.example.com")
    assert run("origins", "list", "acme") == "https://a.example.com\nhttps://b.example.com\n"


@pytest.mark.parametrize(
    "subcommand", [["add", "nobody", "https://a.example.com"], ["remove", "nobody", "x"], ["list", "nobody"]]
)
def test_origins_of_unknown_instance_is_an_error(db, subcommand):
    with pytest.raises(CommandError, match="No instance 'nobody'"):
        run("origins", *subcommand)


def test_origins_add_without_origins_is_an_error(instance):
    with pytest.raises(CommandError, match="the following arguments are required: ORIGIN"):
        run("origins", "add", "acme")


def test_actor_name_falls_back_when_there_is_no_login_name(instance, monkeypatch):
    def no_login_name() -> str:
        raise OSError("no login name")

    monkeypatch.setattr(getpass, "getuser", no_login_name)
    run("origins", "add", "acme", "https://a.example.com")
    assert OriginAudit.objects.get().actor_name == "command"


def test_bad_input_exits_non_zero_with_one_line_on_stderr(tmp_path):
    # A real process against its own SQLite file, to see the exit status and the message.
    env = {
        "PATH": "/usr/bin:/bin",
        "CCPHOST_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    result = subprocess.run(
        [*manage, "origins", "add", "nobody", "https://a.example.com"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: No instance 'nobody'"
