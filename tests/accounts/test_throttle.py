"""Sign-in throttling: failed password sign-ins are counted per username and per client
address in the cache; past a limit, sign-in is refused (429) without checking the password."""

import logging
import time

import pytest
from django.contrib.auth import SESSION_KEY

from tests.accounts.conftest import HOST

INSTANCE_LOGIN = "/connect/acme/login/"
ADMIN_LOGIN = "/admin/login/"
STOCK_LOGIN = "/accounts/login/"
ADDRESS = "198.51.100.7"
ACCOUNT_LOCKED = "Too many failed sign-ins for this account; try again in"
ADDRESS_LOCKED = "Too many failed sign-ins from this network address; try again in"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.CCPHOST_LOGIN_FAILURES_PER_USERNAME = 3
    settings.CCPHOST_LOGIN_FAILURES_PER_IP = 20
    settings.CCPHOST_LOGIN_FAILURE_WINDOW = 900
    return settings


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


def sign_in(client, username, password, path=INSTANCE_LOGIN, address=ADDRESS):
    return client.post(path, {"username": username, "password": password}, HTTP_HOST=HOST, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def fail(client, times, username="alice", path=INSTANCE_LOGIN, address=ADDRESS):
    for _ in range(times):
        response = sign_in(client, username, "wrong-password", path, address)
        assert response.status_code == 200
        assert "correct username and password" in response.content.decode()


def test_failure_past_the_limit_is_refused_with_429_and_says_why(client, instance, alice, caplog):
    fail(client, 3)
    with caplog.at_level(logging.INFO, logger="ccphost.accounts.throttle"):
        response = sign_in(client, "alice", "wrong-again")
    assert response.status_code == 429
    assert 890 <= int(response["Retry-After"]) <= 900
    page = response.content.decode()
    assert "Too many failed sign-ins for this account; try again in 15 minutes." in page
    assert "correct username and password" not in page
    assert not signed_in(client)
    assert "Sign-in refused while throttled: username 'alice'" in caplog.text


def test_reaching_the_limit_is_logged(client, instance, alice, caplog):
    with caplog.at_level(logging.WARNING, logger="ccphost.accounts.throttle"):
        fail(client, 3)
    assert "Sign-in throttled: 3 failed sign-ins for username 'alice'" in caplog.text


def test_correct_password_is_refused_while_the_account_is_locked(client, instance, alice):
    fail(client, 3)
    response = sign_in(client, "alice", "pw-alice-123")
    assert response.status_code == 429
    assert ACCOUNT_LOCKED in response.content.decode()
    assert not signed_in(client)


def test_sign_in_works_again_once_the_window_has_passed(client, instance, alice, limits):
    limits.CCPHOST_LOGIN_FAILURE_WINDOW = 1
    fail(client, 3)
    assert sign_in(client, "alice", "pw-alice-123").status_code == 429
    time.sleep(1.2)
    response = sign_in(client, "alice", "pw-alice-123")
    assert response.status_code == 302
    assert signed_in(client)


def test_attempts_refused_while_locked_are_not_checked_and_do_not_extend_the_lock(client, instance, alice, limits):
    limits.CCPHOST_LOGIN_FAILURE_WINDOW = 1
    fail(client, 3)
    time.sleep(0.5)
    # Had this wrong password been checked, its failure would lock alice until 1 s from now.
    assert sign_in(client, "alice", "wrong-again").status_code == 429
    time.sleep(0.7)
    assert sign_in(client, "alice", "pw-alice-123").status_code == 302


def test_successful_sign_in_forgets_the_accounts_failures(client, instance, alice):
    fail(client, 2)
    assert sign_in(client, "alice", "pw-alice-123").status_code == 302
    client.logout()
    fail(client, 2)  # 4 failures in all, but only 2 since the success
    assert sign_in(client, "alice", "pw-alice-123").status_code == 302
    assert signed_in(client)


def test_usernames_differing_in_case_and_spaces_share_a_count(client, instance, alice):
    fail(client, 1, "alice")
    fail(client, 1, "ALICE")
    fail(client, 1, " Alice ")
    assert sign_in(client, "alice", "pw-alice-123").status_code == 429


def test_admin_sign_in_is_throttled(client, admin_user):
    fail(client, 3, "root", ADMIN_LOGIN)
    response = sign_in(client, "root", "pw-root-123", ADMIN_LOGIN)
    assert response.status_code == 429
    assert ACCOUNT_LOCKED in response.content.decode()
    assert not signed_in(client)


def test_every_sign_in_page_shares_the_counts(client, instance, admin_user):
    fail(client, 1, "root", STOCK_LOGIN)
    fail(client, 1, "root", INSTANCE_LOGIN)
    fail(client, 1, "root", ADMIN_LOGIN)
    for path in (STOCK_LOGIN, INSTANCE_LOGIN, ADMIN_LOGIN):
        response = sign_in(client, "root", "pw-root-123", path)
        assert response.status_code == 429, path
        assert ACCOUNT_LOCKED in response.content.decode(), path


def test_an_account_is_locked_for_every_address(client, instance, alice):
    fail(client, 3, address="198.51.100.7")
    response = sign_in(client, "alice", "pw-alice-123", address="203.0.113.9")
    assert response.status_code == 429
    assert ACCOUNT_LOCKED in response.content.decode()


def test_an_address_is_locked_after_failures_across_usernames(client, instance, alice, limits):
    limits.CCPHOST_LOGIN_FAILURES_PER_IP = 4
    for name in ("bob", "carol", "dave", "erin"):
        fail(client, 1, name)
    response = sign_in(client, "alice", "pw-alice-123")
    assert response.status_code == 429
    assert ADDRESS_LOCKED in response.content.decode()
    assert not signed_in(client)
    # Another address is not locked, and alice's own count is untouched.
    assert sign_in(client, "alice", "pw-alice-123", address="203.0.113.9").status_code == 302


def test_a_success_does_not_reset_its_addresss_count(client, instance, alice, limits):
    limits.CCPHOST_LOGIN_FAILURES_PER_IP = 4
    fail(client, 2, "bob")
    assert sign_in(client, "alice", "pw-alice-123").status_code == 302
    client.logout()
    fail(client, 2, "carol")
    assert sign_in(client, "alice", "pw-alice-123").status_code == 429


def test_ipv6_clients_in_one_64_share_an_address_count(client, instance, alice, limits):
    limits.CCPHOST_LOGIN_FAILURES_PER_IP = 2
    fail(client, 1, "bob", address="2001:db8:1:2::1")
    fail(client, 1, "carol", address="2001:db8:1:2:ffff::9")
    assert sign_in(client, "alice", "pw-alice-123", address="2001:db8:1:2::77").status_code == 429
    assert sign_in(client, "alice", "pw-alice-123", address="2001:db8:1:3::1").status_code == 302


def test_a_limit_of_zero_turns_its_count_off(client, instance, alice, limits):
    limits.CCPHOST_LOGIN_FAILURES_PER_USERNAME = 0
    fail(client, 5)
    assert sign_in(client, "alice", "pw-alice-123").status_code == 302


def test_an_unreachable_cache_never_locks_anybody_out(client, instance, alice, settings, caplog):
    # Nothing listens on port 1: every cache call fails at once.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    with caplog.at_level(logging.WARNING, logger="ccphost.accounts.throttle"):
        fail(client, 5)
        response = sign_in(client, "alice", "pw-alice-123")
    assert response.status_code == 302
    assert signed_in(client)
    assert "the cache cannot be read; sign-in is not throttled" in caplog.text
    assert "the cache cannot be written; failure not counted" in caplog.text
