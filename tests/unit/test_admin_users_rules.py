"""
Tests for L{ruma_tx.matrix.admin_users} (the user admin API's requests and
answers) and for per-user overrides in L{ruma_tx.services.ratelimit}.
"""
import pytest
from twisted.internet.task import Clock

from ruma_tx.matrix.admin_users import (
    UNCHANGED,
    UserListQuery,
    UserRecord,
    listed_user,
    ratelimit_override,
    user_details,
    user_edit,
)
from ruma_tx.matrix.errors import BadRequest
from ruma_tx.services.ratelimit import UNLIMITED, RateLimit, RateLimiter


def errcode(call, *args):
    """The errcode of the 400 that C{call(*args)} raises."""
    with pytest.raises(BadRequest) as raised:
        call(*args)
    return raised.value.errcode


def test_user_edit_reads_what_is_given_and_leaves_the_rest():
    edit = user_edit({"displayname": "Alice", "admin": True, "user_type": None, "avatar_url": None,
                      "creation_ts_ms": 1, "threepids": []})
    assert (edit.displayname, edit.admin, edit.user_type, edit.avatar_url) == ("Alice", True, None, UNCHANGED)
    assert (edit.password, edit.logout_devices, edit.deactivated, edit.locked) == (None, True, None, None)


def test_user_edit_empty_strings_clear_the_profile():
    edit = user_edit({"displayname": "", "avatar_url": ""})
    assert (edit.displayname, edit.avatar_url) == (None, None)


@pytest.mark.parametrize("body, expected", [
    ({"admin": 1}, "M_BAD_JSON"),
    ({"logout_devices": None}, "M_BAD_JSON"),
    ({"password": 5}, "M_BAD_JSON"),
    ({"password": ""}, "M_INVALID_PARAM"),
    ({"password": "x" * 513}, "M_INVALID_PARAM"),
    ({"user_type": "admin"}, "M_INVALID_PARAM"),
    ({"external_ids": [{"auth_provider": "a", "external_id": "b"}]}, "M_INVALID_PARAM"),
    ({"threepids": {}}, "M_BAD_JSON"),
    ({"deactivated": True, "locked": True}, "M_INVALID_PARAM"),
    ({"displayname": "x" * 257}, "M_TOO_LARGE"),
    ({"avatar_url": "http://example.org/a"}, "M_INVALID_PARAM"),
])
def test_user_edit_refuses_bad_fields(body, expected):
    assert errcode(user_edit, body) == expected


def test_ratelimit_override_defaults_to_unlimited():
    assert ratelimit_override({}) == (0, 0)
    assert ratelimit_override({"messages_per_second": 5, "burst_count": 10}) == (5, 10)


@pytest.mark.parametrize("body", [{"messages_per_second": -1}, {"burst_count": 1.5}, {"burst_count": True},
                                  {"messages_per_second": 2 ** 31}, {"messages_per_second": 3}])
def test_ratelimit_override_refuses_bad_values(body):
    assert errcode(ratelimit_override, body) == "M_INVALID_PARAM"


def test_unknown_order_is_refused():
    assert errcode(lambda: UserListQuery(start=0, limit=10, order_by="password")) == "M_INVALID_PARAM"


def test_creation_ts_is_milliseconds_in_the_list_and_seconds_in_the_record():
    user = UserRecord(user_id="@a:hs", is_guest=False, admin=False, deactivated=False, erased=False,
                      shadow_banned=False, locked=False, suspended=False, user_type=None, displayname="A",
                      avatar_url=None, created_ts=1_560_432_668_123, last_seen_ts=None)
    assert listed_user(user)["creation_ts"] == 1_560_432_668_123
    assert user_details(user)["creation_ts"] == 1_560_432_668
    assert user_details(user)["threepids"] == [] and user_details(user)["name"] == "@a:hs"


def test_override_replaces_or_lifts_the_configured_limit():
    limiter = RateLimiter(Clock(), {"message": RateLimit(per_second=0.1, burst_count=1)})
    assert [limiter.check("message", "@a:hs", UNLIMITED) for _ in range(5)] == [None] * 5
    own = RateLimit(per_second=1, burst_count=3)
    assert [limiter.check("message", "@b:hs", own) is None for _ in range(4)] == [True, True, True, False]
    assert limiter.check("message", "@c:hs") is None and limiter.check("message", "@c:hs") is not None
    # Unknown actions stay unlimited whatever the override.
    assert limiter.check("other", "@b:hs", own) is None
