"""The m.room.server_acl matching rules (ruma_tx.matrix.server_acl), on hand-written contents."""
from __future__ import annotations

import pytest

from ruma_tx.matrix.server_acl import ServerAcl, host_of, is_ip_literal


def test_no_acl_allows_every_server():
    """A room without an m.room.server_acl event lets every server take part, IP literals included."""
    acl = ServerAcl(None)
    assert acl.allows("evil.example") and acl.allows("1.2.3.4:8448") and acl.allows("[::1]")


def test_an_acl_without_allow_denies_everyone():
    """An ACL with no allow list (or one that is not a list) denies every server, as the spec warns."""
    assert not ServerAcl({}).allows("example.org")
    assert not ServerAcl({"deny": []}).allows("example.org")
    assert not ServerAcl({"allow": "*"}).allows("example.org")


def test_deny_wins_over_allow():
    """A server matching both lists is denied; others matching allow are allowed."""
    acl = ServerAcl({"allow": ["*"], "deny": ["evil.example", "*.evil.example"]})
    assert not acl.allows("evil.example")
    assert not acl.allows("sub.evil.example")
    assert acl.allows("good.example")
    assert acl.allows("notevil.example")


@pytest.mark.parametrize("server_name", ["evil.example", "evil.example:8448", "evil.example:1234"])
def test_the_port_is_never_considered(server_name):
    """evil.example, with or without any port, matches a rule for evil.example."""
    assert not ServerAcl({"allow": ["*"], "deny": ["evil.example"]}).allows(server_name)
    assert ServerAcl({"allow": ["evil.example"]}).allows(server_name)


def test_globs_match_whole_names_case_insensitively():
    """'*' is any run of characters, '?' exactly one, case is ignored, and a glob matches the whole name."""
    acl = ServerAcl({"allow": ["*.Example.ORG", "matrix?.net"]})
    assert acl.allows("chat.example.org")
    assert acl.allows("A.B.EXAMPLE.org:443")
    assert acl.allows("matrix1.net")
    assert not acl.allows("example.org")  # "*." needs a label before the dot
    assert not acl.allows("matrix12.net")
    assert not acl.allows("chat.example.org.evil")


def test_ip_literals_are_denied_only_when_allow_ip_literals_is_false():
    """allow_ip_literals false denies IPv4 and IPv6 literals before any allow rule; true or absent (or
    not a boolean) leaves them to the lists."""
    strict = ServerAcl({"allow": ["*"], "allow_ip_literals": False})
    assert not strict.allows("1.2.3.4")
    assert not strict.allows("127.0.0.1:8448")
    assert not strict.allows("[2001:db8::1]:8448")
    assert strict.allows("example.org")
    for lenient in ({"allow": ["*"]}, {"allow": ["*"], "allow_ip_literals": True},
                    {"allow": ["*"], "allow_ip_literals": "no"}):
        assert ServerAcl(lenient).allows("1.2.3.4")


def test_ip_literals_can_be_listed():
    """An IP literal is matched by the lists like a name (its port left out)."""
    acl = ServerAcl({"allow": ["*"], "deny": ["127.0.0.1", "[::1]"]})
    assert not acl.allows("127.0.0.1:8448")
    assert not acl.allows("[::1]:8448")
    assert acl.allows("127.0.0.2")


def test_entries_that_are_not_strings_are_skipped():
    """Only strings in allow and deny count."""
    acl = ServerAcl({"allow": [42, None, "good.example"], "deny": [{"x": 1}]})
    assert acl.allows("good.example")
    assert not acl.allows("other.example")


def test_host_of_and_is_ip_literal():
    """The host is the name without its port; IP literals are IPv4 or bracketed IPv6."""
    assert host_of("example.org:8448") == "example.org"
    assert host_of("[2001:db8::1]:8448") == "[2001:db8::1]"
    assert host_of("example.org") == "example.org"
    assert is_ip_literal("10.0.0.1") and is_ip_literal("[::1]")
    assert not is_ip_literal("example.org") and not is_ip_literal("1.2.3")
