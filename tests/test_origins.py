"""normalize_origin: what is accepted, in which normal form, and what is refused and why."""

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ccphost.instances.origins import MAX_ORIGIN_LENGTH, OriginError, normalize_origin


def host_of_length(length: int) -> str:
    """A DNS name of exactly ``length`` characters built from 63-character labels."""
    labels: list[str] = []
    remaining = length
    letters = "abcdefghij"
    while remaining > 0:
        size = min(63, remaining)
        labels.append(letters[len(labels)] * size)
        remaining -= size + 1  # the label and the dot before the next one
    host = ".".join(labels)
    assert len(host) == length
    return host


# 8 ("https://") + 253 (longest DNS name) + 6 (":65535") = 267, Amazon Connect's limit.
LONGEST = f"https://{host_of_length(253)}:65535"
ONE_TOO_LONG = f"https://{host_of_length(254)}:65535"

ACCEPTED = [
    ("https://crm.example.com", "https://crm.example.com"),
    ("https://crm.example.com/", "https://crm.example.com"),
    ("  https://crm.example.com  ", "https://crm.example.com"),
    ("HTTPS://CRM.EXAMPLE.COM", "https://crm.example.com"),
    ("Https://Crm.Example.Com/", "https://crm.example.com"),
    ("https://crm.example.com:443", "https://crm.example.com"),
    ("https://crm.example.com:443/", "https://crm.example.com"),
    ("https://crm.example.com:8443", "https://crm.example.com:8443"),
    ("https://crm.example.com:80", "https://crm.example.com:80"),
    ("https://crm.example.com:1", "https://crm.example.com:1"),
    ("https://crm.example.com:65535", "https://crm.example.com:65535"),
    ("https://crm.example.com:08443", "https://crm.example.com:8443"),
    ("https://Bücher.example", "https://xn--bcher-kva.example"),
    ("https://BÜCHER.example", "https://xn--bcher-kva.example"),
    ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ("https://例え.テスト", "https://xn--r8jz45g.xn--zckzah"),
    ("https://192.0.2.10", "https://192.0.2.10"),
    ("https://192.0.2.10:8443", "https://192.0.2.10:8443"),
    ("https://[2001:DB8:0:0:0:0:0:1]", "https://[2001:db8::1]"),
    ("https://[2001:db8::1]:443", "https://[2001:db8::1]"),
    ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ("https://[::1]", "https://[::1]"),
    ("http://localhost", "http://localhost"),
    ("http://localhost:80", "http://localhost"),
    ("http://127.0.0.1:8001", "http://127.0.0.1:8001"),
    ("HTTP://LOCALHOST:8000/", "http://localhost:8000"),
    ("http://[::1]:8000", "http://[::1]:8000"),
    ("http://crm.localhost:3000", "http://crm.localhost:3000"),
    ("http://127.0.0.1:443", "http://127.0.0.1:443"),
    (LONGEST, LONGEST),
]

REFUSED = [
    ("", "empty"),
    ("   ", "empty"),
    ("crm.example.com", "no scheme"),
    ("//crm.example.com", "no scheme"),
    ("https://crm.example.com/path", "cannot have a path"),
    ("https://crm.example.com//", "cannot have a path"),
    ("https://crm.example.com?x=1", "query string"),
    ("https://crm.example.com/?", "query string"),
    ("https://crm.example.com#top", "fragment"),
    ("https://user@crm.example.com", "user info"),
    ("https://user:secret@crm.example.com", "user info"),
    ("https://*.example.com", "Wildcards"),
    ("https://", "no host"),
    ("https://:8443", "no host"),
    ("https://crm.example.com:abc", "not a number"),
    ("https://crm.example.com:0", "out of range"),
    ("https://crm.example.com:65536", "out of range"),
    ("https://crm.example.com:-1", "not a number"),
    ("http://crm.example.com", "Only HTTPS"),
    ("http://192.0.2.10", "Only HTTPS"),
    ("ftp://crm.example.com", "must be https"),
    ("ws://crm.example.com", "must be https"),
    ("wss://crm.example.com", "must be https"),
    ("javascript://crm.example.com", "must be https"),
    ("https://crm .example.com", "spaces"),
    ("https://crm\t.example.com", "spaces"),
    ("https://crm.example.com\\", "backslash"),
    ("https://[fe80::1%eth0]", "zone id"),
    ("https://[fe80::1%25eth0]", "zone id"),
    ("https://[2001:db8::zz]", "IPv6"),
    ("https://[2001:db8::1", "not a valid origin"),
    ("https://2001:db8::1", "brackets"),
    ("https://crm.example.com.", "end with a dot"),
    ("https://999.1.1.1", "not a valid IPv4"),
    ("https://crm..example.com", "not a valid host name"),
    ("https://crm_1.example.com", "not a valid host name"),
    (f"https://{'a' * 64}.example.com", "not a valid host name"),
    (ONE_TOO_LONG, "at most 267 characters; this one has 268"),
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED)
def test_accepted_origin_has_its_normal_form(raw, expected):
    assert normalize_origin(raw, allow_http_loopback=True) == expected


@pytest.mark.parametrize(("raw", "fragment"), REFUSED)
def test_refused_origin_names_the_problem(raw, fragment):
    with pytest.raises(OriginError, match=fragment):
        normalize_origin(raw, allow_http_loopback=True)


def test_the_tables_are_large_enough():
    assert len(ACCEPTED) + len(REFUSED) >= 45


def test_origin_of_exactly_267_characters_is_accepted():
    assert len(LONGEST) == MAX_ORIGIN_LENGTH == 267
    assert normalize_origin(LONGEST) == LONGEST


def test_origin_of_268_characters_is_refused():
    assert len(ONE_TOO_LONG) == 268
    with pytest.raises(OriginError, match="at most 267 characters; this one has 268"):
        normalize_origin(ONE_TOO_LONG)


def test_surrounding_whitespace_is_ignored():
    assert normalize_origin("\thttps://crm.example.com\n") == "https://crm.example.com"


@pytest.mark.parametrize("raw", ["http://localhost:8000", "http://127.0.0.1", "http://[::1]"])
def test_http_loopback_refused_when_not_allowed(raw):
    with pytest.raises(OriginError, match="only for loopback hosts when DEBUG or CCPHOST_ALLOW_HTTP_LOOPBACK"):
        normalize_origin(raw, allow_http_loopback=False)


def test_http_loopback_follows_the_setting(settings):
    settings.CCPHOST_ALLOW_HTTP_LOOPBACK = False
    with pytest.raises(OriginError, match="CCPHOST_ALLOW_HTTP_LOOPBACK"):
        normalize_origin("http://localhost:8000")
    settings.CCPHOST_ALLOW_HTTP_LOOPBACK = True
    assert normalize_origin("http://localhost:8000") == "http://localhost:8000"


def test_non_text_is_refused():
    with pytest.raises(OriginError, match="must be text"):
        normalize_origin(None)  # type: ignore[arg-type]


# Text that looks a little like an origin finds more corner cases than arbitrary text alone.
origin_like = st.builds(
    lambda scheme, host, port, tail: f"{scheme}://{host}{port}{tail}",
    st.sampled_from(["https", "HTTPS", "http", "ftp", ""]),
    st.one_of(
        st.from_regex(r"[A-Za-z0-9.\-]{0,30}", fullmatch=True),
        st.text(max_size=20),
        st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
    ),
    st.one_of(st.just(""), st.integers(-1, 70000).map(lambda p: f":{p}"), st.text(max_size=6).map(":{}".format)),
    st.sampled_from(["", "/", "/x", "?q", "#f", " "]),
)


@hypothesis_settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), origin_like))
def test_normalize_origin_raises_only_origin_error_and_is_idempotent(raw):
    try:
        origin = normalize_origin(raw, allow_http_loopback=True)
    except OriginError:
        return
    assert normalize_origin(origin, allow_http_loopback=True) == origin
    assert len(origin) <= MAX_ORIGIN_LENGTH
