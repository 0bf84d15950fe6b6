"""
Tests for L{ruma_tx.matrix.server_discovery}: the spec's "Resolving server
names" steps, well-known parsing, redirects and cache lifetimes.
"""

import json
from email.utils import formatdate

import pytest

from ruma_tx.matrix.server_discovery import (
    MAX_WELL_KNOWN_BYTES,
    MAX_WELL_KNOWN_REDIRECTS,
    WELL_KNOWN_DEFAULT_CACHE_SECONDS,
    WELL_KNOWN_MAX_CACHE_SECONDS,
    WELL_KNOWN_MIN_CACHE_SECONDS,
    Connect,
    FetchWellKnown,
    InvalidServerName,
    LookupSrv,
    ServerName,
    SrvRecord,
    Step,
    Target,
    next_well_known_url,
    parse_server_name,
    plan_discovery,
    well_known_cache_seconds,
    well_known_delegation,
)

NOW = 1_700_000_000.0


def _srv(target: str, port: int, priority: int = 10, weight: int = 0) -> SrvRecord:
    return SrvRecord(priority=priority, weight=weight, port=port, target=target)


def _as_lookup(step: Step) -> LookupSrv:
    assert isinstance(step, LookupSrv), step
    return step


def _as_fetch(step: Step) -> FetchWellKnown:
    assert isinstance(step, FetchWellKnown), step
    return step


def _targets(step: Step) -> tuple[Target, ...]:
    assert isinstance(step, Connect), step
    return step.targets


# --- parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, host, port, is_ip, address",
    [
        ("example.org", "example.org", None, False, "example.org"),
        ("example.org:8449", "example.org", 8449, False, "example.org"),
        ("1.2.3.4", "1.2.3.4", None, True, "1.2.3.4"),
        ("1.2.3.4:80", "1.2.3.4", 80, True, "1.2.3.4"),
        ("[::1]", "[::1]", None, True, "::1"),
        ("[2001:db8::5]:8080", "[2001:db8::5]", 8080, True, "2001:db8::5"),
        ("localhost", "localhost", None, False, "localhost"),
        ("1.2.3", "1.2.3", None, False, "1.2.3"),
    ],
)
def test_parse_server_name(name, host, port, is_ip, address):
    """Hosts, ports and IP literals (IPv6 in brackets) are told apart."""
    parsed = parse_server_name(name)
    assert parsed == ServerName(host, port, is_ip)
    assert parsed.address == address
    assert str(parsed) == name


@pytest.mark.parametrize(
    "name", ["", "example.org:", "example.org:99999", "[::1", "::1", "a..b", "1.2.3.400"]
)
def test_parse_invalid_server_name(name):
    """Names outside the grammar are rejected."""
    with pytest.raises(InvalidServerName):
        parse_server_name(name)


# --- steps 1 and 2 -----------------------------------------------------------


def _delegate(delegated: str) -> Step:
    fetch = _as_fetch(plan_discovery(parse_server_name("example.org")))
    return fetch.answer(parse_server_name(delegated))


def _direct(name: str) -> Step:
    return plan_discovery(parse_server_name(name))


@pytest.mark.parametrize("plan", [_direct, _delegate], ids=["step1", "step3_1"])
@pytest.mark.parametrize(
    "name, expected",
    [
        ("1.2.3.4", Target("1.2.3.4", 8448, "1.2.3.4", "1.2.3.4")),
        ("1.2.3.4:1234", Target("1.2.3.4", 1234, "1.2.3.4:1234", "1.2.3.4")),
        ("[2001:db8::1]", Target("2001:db8::1", 8448, "[2001:db8::1]", "2001:db8::1")),
        (
            "[2001:db8::1]:443",
            Target("2001:db8::1", 443, "[2001:db8::1]:443", "2001:db8::1"),
        ),
    ],
)
def test_ip_literal(plan, name, expected):
    """An IP literal, as server name (step 1) or delegated name (step 3.1),
    is used directly, on 8448 unless a port is given; the Host header is
    the name (with port if given), the certificate is for the IP."""
    assert _targets(plan(name)) == (expected,)


def test_step2_explicit_port():
    """A hostname with a port is resolved directly, without well-known; the
    Host header keeps the port, the certificate is for the hostname."""
    step = plan_discovery(parse_server_name("example.org:8449"))
    assert _targets(step) == (Target("example.org", 8449, "example.org:8449", "example.org"),)


# --- step 3: well-known delegation -------------------------------------------


def test_step3_fetches_well_known():
    """A hostname without port starts with the well-known fetch."""
    fetch = _as_fetch(plan_discovery(parse_server_name("example.org")))
    assert fetch.url == "https://example.org/.well-known/matrix/server"


def test_step3_2_delegated_port():
    """A delegated hostname with port is resolved directly; Host and
    certificate name are the delegated name, not the original."""
    assert _targets(_delegate("matrix.example.net:1234")) == (
        Target("matrix.example.net", 1234, "matrix.example.net:1234", "matrix.example.net"),
    )


def test_step3_3_delegated_matrix_fed_srv():
    """Without delegated port, _matrix-fed._tcp SRV of the delegated name
    gives the targets; Host and certificate are the delegated hostname."""
    lookup = _as_lookup(_delegate("matrix.example.net"))
    assert lookup.query == "_matrix-fed._tcp.matrix.example.net"
    step = lookup.answer([_srv("fed.example.net.", 8443)])
    assert _targets(step) == (
        Target("fed.example.net", 8443, "matrix.example.net", "matrix.example.net"),
    )


def test_step3_4_delegated_deprecated_srv():
    """If no _matrix-fed record, the deprecated _matrix._tcp one is used."""
    lookup = _as_lookup(_as_lookup(_delegate("matrix.example.net")).answer([]))
    assert lookup.query == "_matrix._tcp.matrix.example.net"
    assert _targets(lookup.answer([_srv("old.example.net", 8555)])) == (
        Target("old.example.net", 8555, "matrix.example.net", "matrix.example.net"),
    )


def test_step3_5_delegated_no_srv():
    """Without any SRV record, the delegated hostname on 8448 is used."""
    step = _as_lookup(_as_lookup(_delegate("matrix.example.net")).answer([])).answer([])
    assert _targets(step) == (
        Target("matrix.example.net", 8448, "matrix.example.net", "matrix.example.net"),
    )


def test_delegation_is_not_followed_twice():
    """The delegated name's own well-known is never fetched."""
    assert not isinstance(_delegate("matrix.example.net"), FetchWellKnown)


# --- steps 4 to 6: no valid well-known ----------------------------------------


def _no_well_known() -> LookupSrv:
    fetch = _as_fetch(plan_discovery(parse_server_name("example.org")))
    return _as_lookup(fetch.answer(None))


def test_step4_matrix_fed_srv():
    """Without delegation, _matrix-fed._tcp.<hostname> is looked up; Host
    and certificate stay the original hostname."""
    lookup = _no_well_known()
    assert lookup.query == "_matrix-fed._tcp.example.org"
    assert _targets(lookup.answer([_srv("fed.example.org", 443)])) == (
        Target("fed.example.org", 443, "example.org", "example.org"),
    )


def test_step5_deprecated_srv():
    """Then the deprecated _matrix._tcp.<hostname>."""
    lookup = _as_lookup(_no_well_known().answer([]))
    assert lookup.query == "_matrix._tcp.example.org"
    assert _targets(lookup.answer([_srv("old.example.org", 8000)])) == (
        Target("old.example.org", 8000, "example.org", "example.org"),
    )


def test_step6_default_port():
    """Without SRV records, the hostname itself on 8448."""
    step = _as_lookup(_no_well_known().answer([])).answer([])
    assert _targets(step) == (Target("example.org", 8448, "example.org", "example.org"),)


def test_matrix_fed_srv_found_skips_deprecated():
    """A _matrix-fed record means _matrix._tcp is never asked."""
    assert isinstance(_no_well_known().answer([_srv("a.example.org", 1)]), Connect)


def test_srv_records_in_priority_then_weight_order():
    """Lower priority first; among equals, heavier weight first."""
    step = _no_well_known().answer(
        [
            _srv("c.example.org", 3, priority=20),
            _srv("b.example.org", 2, priority=10, weight=1),
            _srv("a.example.org", 1, priority=10, weight=5),
        ]
    )
    assert [t.host for t in _targets(step)] == ["a.example.org", "b.example.org", "c.example.org"]


def test_srv_dot_target_means_no_service():
    """A single SRV target of '.' means no federation there: no targets."""
    assert _targets(_no_well_known().answer([_srv(".", 0)])) == ()


# --- well-known body ------------------------------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"m.server": "matrix.example.org:443"}', ServerName("matrix.example.org", 443, False)),
        (b'{"m.server": "[::1]"}', ServerName("[::1]", None, True)),
        (b'{"m.server": "m.example.org", "extra": 1}', ServerName("m.example.org", None, False)),
    ],
)
def test_well_known_delegation(body, expected):
    """A JSON object with a valid m.server gives the delegated name."""
    assert well_known_delegation(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{",
        b"[]",
        b'"matrix.example.org"',
        b"{}",
        b'{"m.server": 443}',
        b'{"m.server": ""}',
        b'{"m.server": "bad name!"}',
        b'{"m.server": "example.org:70000"}',
        b'{"m.server": "ex\xff.org"}',
    ],
)
def test_bad_well_known(body):
    """Invalid bodies give no delegation (discovery goes on with SRV)."""
    assert well_known_delegation(body) is None


def test_oversized_well_known():
    """A body beyond the size limit is refused even if it is valid JSON."""
    body = json.dumps({"m.server": "m.example.org", "pad": "x" * MAX_WELL_KNOWN_BYTES})
    assert well_known_delegation(body.encode()) is None
    small = json.dumps({"m.server": "m.example.org"}).encode()
    assert well_known_delegation(small.ljust(MAX_WELL_KNOWN_BYTES)) is not None


# --- redirects ---------------------------------------------------------------------

START = "https://example.org/.well-known/matrix/server"


def test_redirect_followed():
    """Absolute and relative HTTPS redirects are followed."""
    assert next_well_known_url(START, "https://www.example.org/wk", [START]) == (
        "https://www.example.org/wk"
    )
    assert next_well_known_url(START, "/other", [START]) == "https://example.org/other"


def test_redirect_loop_refused():
    """A redirect back to a URL already fetched is a loop."""
    hop = "https://www.example.org/wk"
    assert next_well_known_url(hop, START, [START, hop]) is None


def test_redirect_to_http_refused():
    """The well-known must stay on HTTPS."""
    assert next_well_known_url(START, "http://example.org/wk", [START]) is None


def test_redirect_limit():
    """After the maximum number of redirects, no more are followed."""
    visited = [START] + [f"https://example.org/{i}" for i in range(MAX_WELL_KNOWN_REDIRECTS)]
    assert next_well_known_url(visited[-1], "/next", visited[:-1]) == "https://example.org/next"
    assert next_well_known_url(visited[-1], "/next", visited) is None


# --- cache lifetime ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cache_control, expires, seconds",
    [
        ([], [], WELL_KNOWN_DEFAULT_CACHE_SECONDS),
        (["max-age=3600"], [], 3600),
        (["public, MAX-AGE=7200"], [], 7200),
        (['max-age="600"'], [], 600),
        (["public", "max-age=900"], [], 900),
        (["max-age=999999999"], [], WELL_KNOWN_MAX_CACHE_SECONDS),
        (["max-age=0"], [], WELL_KNOWN_MIN_CACHE_SECONDS),
        (["no-store"], [], WELL_KNOWN_MIN_CACHE_SECONDS),
        (["no-store, max-age=3600"], [], WELL_KNOWN_MIN_CACHE_SECONDS),
        (["public"], [], WELL_KNOWN_DEFAULT_CACHE_SECONDS),
        ([], [formatdate(NOW + 7200, usegmt=True)], 7200),
        ([], [formatdate(NOW + 10 * 86400, usegmt=True)], WELL_KNOWN_MAX_CACHE_SECONDS),
        ([], [formatdate(NOW - 3600, usegmt=True)], WELL_KNOWN_MIN_CACHE_SECONDS),
        ([], ["0"], WELL_KNOWN_MIN_CACHE_SECONDS),
        (["max-age=1800"], [formatdate(NOW + 7200, usegmt=True)], 1800),
        (["max-age=soon"], [formatdate(NOW + 7200, usegmt=True)], 7200),
    ],
)
def test_well_known_cache_seconds(cache_control, expires, seconds):
    """Cache-Control beats Expires, the default is 24 h, and header-given
    lifetimes are bounded by the minimum and 48 h."""
    assert well_known_cache_seconds(cache_control, expires, NOW) == pytest.approx(seconds)
