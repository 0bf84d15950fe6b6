"""Profiles (display name and avatar): reading anyone's, changing one's own, through the real daemon."""
from urllib.parse import quote

import pytest_twisted
from conftest import unique_localpart

AVATAR = "mxc://test.local/SDGdghriugerRg"


@pytest_twisted.ensureDeferred
async def test_set_and_get_displayname_and_avatar(client):
    """A user sets their display name and avatar; anyone reads them, per field and as a whole."""
    user = await client.register()
    me, token = user["user_id"], user["access_token"]
    put_name = await client.request("PUT", f"profile/{me}/displayname", {"displayname": "Alice"}, token=token)
    assert put_name.code == 200 and put_name.json == {}
    put_avatar = await client.request("PUT", f"profile/{me}/avatar_url", {"avatar_url": AVATAR}, token=token)
    assert put_avatar.code == 200 and put_avatar.json == {}
    name = await client.request("GET", f"profile/{me}/displayname")
    assert name.code == 200 and name.json == {"displayname": "Alice"}
    avatar = await client.request("GET", f"profile/{me}/avatar_url", token=token)
    assert avatar.code == 200 and avatar.json == {"avatar_url": AVATAR}
    whole = await client.request("GET", f"profile/{me}")
    assert whole.code == 200 and whole.json == {"displayname": "Alice", "avatar_url": AVATAR}


@pytest_twisted.ensureDeferred
async def test_unset_fields_are_absent_or_404(client):
    """A field never set is absent from the profile and its own URL answers 404 M_NOT_FOUND."""
    user = await client.register()
    me = user["user_id"]
    whole = await client.request("GET", f"profile/{me}")
    assert whole.code == 200 and "avatar_url" not in whole.json
    avatar = await client.request("GET", f"profile/{me}/avatar_url")
    assert avatar.code == 404 and avatar.json["errcode"] == "M_NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_delete_clears_fields(client):
    """DELETE /profile/{userId}/{keyName} clears the field: it leaves the profile and its URL answers 404."""
    user = await client.register()
    me, token = user["user_id"], user["access_token"]
    await client.request("PUT", f"profile/{me}/displayname", {"displayname": "Bob"}, token=token)
    await client.request("PUT", f"profile/{me}/avatar_url", {"avatar_url": AVATAR}, token=token)
    for key in ("displayname", "avatar_url"):
        deleted = await client.request("DELETE", f"profile/{me}/{key}", token=token)
        assert deleted.code == 200 and deleted.json == {}
        gone = await client.request("GET", f"profile/{me}/{key}")
        assert gone.code == 404 and gone.json["errcode"] == "M_NOT_FOUND"
    assert (await client.request("GET", f"profile/{me}")).json == {}
    again = await client.request("DELETE", f"profile/{me}/avatar_url", token=token)
    assert again.code == 200


@pytest_twisted.ensureDeferred
async def test_empty_string_clears_a_field(client):
    """Setting a field to the empty string clears it, as Synapse does."""
    user = await client.register()
    me, token = user["user_id"], user["access_token"]
    await client.request("PUT", f"profile/{me}/displayname", {"displayname": "Carol"}, token=token)
    cleared = await client.request("PUT", f"profile/{me}/displayname", {"displayname": ""}, token=token)
    assert cleared.code == 200
    assert (await client.request("GET", f"profile/{me}/displayname")).code == 404


@pytest_twisted.ensureDeferred
async def test_cannot_change_someone_elses_profile(client):
    """Setting or deleting another user's profile field answers 403 M_FORBIDDEN and changes nothing."""
    alice = await client.register()
    bob = await client.register()
    target = f"profile/{bob['user_id']}"
    await client.request("PUT", f"{target}/displayname", {"displayname": "Bob"}, token=bob["access_token"])
    attempts = [
        ("PUT", f"{target}/displayname", {"displayname": "Mallory"}),
        ("PUT", f"{target}/avatar_url", {"avatar_url": AVATAR}),
        ("DELETE", f"{target}/displayname", None),
        ("DELETE", f"{target}/avatar_url", None),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, body, token=alice["access_token"])
        assert response.code == 403, (method, path, response)
        assert response.json["errcode"] == "M_FORBIDDEN"
    assert (await client.request("GET", target)).json == {"displayname": "Bob"}


@pytest_twisted.ensureDeferred
async def test_unknown_user_is_404(client):
    """The profile of a user that does not exist answers 404 M_NOT_FOUND."""
    for path in ("profile/@nosuchuser:test.local", "profile/@nosuchuser:test.local/displayname",
                 "profile/@nosuchuser:test.local/avatar_url", "profile/@someone:elsewhere.example"):
        response = await client.request("GET", path)
        assert response.code == 404, (path, response)
        assert response.json["errcode"] == "M_NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_malformed_user_id_is_400(client):
    """A profile path naming no valid user id answers 400 M_INVALID_PARAM."""
    user = await client.register()
    for method, path, body in [("GET", "profile/notauserid", None),
                               ("GET", "profile/@nocolon/displayname", None),
                               ("PUT", "profile/notauserid/displayname", {"displayname": "x"})]:
        response = await client.request(method, path, body, token=user["access_token"], validate=False)
        assert response.code == 400, (path, response)
        assert response.json["errcode"] == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_url_encoded_user_id(client):
    """A user id percent-encoded in the path (%40, %3A) names the same user."""
    user = await client.register()
    me, token = user["user_id"], user["access_token"]
    encoded = quote(me, safe="")
    assert encoded.startswith("%40") and "%3A" in encoded
    put = await client.request("PUT", f"profile/{encoded}/displayname", {"displayname": "Dora"}, token=token)
    assert put.code == 200, put
    assert (await client.request("GET", f"profile/{me}/displayname")).json == {"displayname": "Dora"}
    assert (await client.request("GET", f"profile/{encoded}")).json == {"displayname": "Dora"}


@pytest_twisted.ensureDeferred
async def test_user_id_with_a_slash(client):
    """A user id whose localpart holds '/' (allowed by the grammar) works in the path as %2F."""
    user = await client.register(unique_localpart("slash/"))
    me, token = user["user_id"], user["access_token"]
    encoded = quote(me, safe="")
    assert "%2F" in encoded
    put = await client.request("PUT", f"profile/{encoded}/displayname", {"displayname": "Eve"}, token=token)
    assert put.code == 200, put
    got = await client.request("GET", f"profile/{encoded}/displayname")
    assert got.code == 200 and got.json == {"displayname": "Eve"}


@pytest_twisted.ensureDeferred
async def test_bad_values_are_400(client):
    """A missing, non-string, over-long or non-mxc value is refused with 400 and the right errcode."""
    user = await client.register()
    me, token = user["user_id"], user["access_token"]
    before = (await client.request("GET", f"profile/{me}")).json
    cases = [
        ("displayname", {}, "M_MISSING_PARAM"),
        ("displayname", {"displayname": 5}, "M_BAD_JSON"),
        ("displayname", {"displayname": None}, "M_BAD_JSON"),
        ("displayname", {"displayname": "x" * 257}, "M_TOO_LARGE"),
        ("avatar_url", {"avatar_url": "https://example.com/a.png"}, "M_INVALID_PARAM"),
        ("avatar_url", {"avatar_url": "mxc://test.local/../../etc/passwd"}, "M_INVALID_PARAM"),
    ]
    for key, body, errcode in cases:
        response = await client.request("PUT", f"profile/{me}/{key}", body, token=token, validate=False)
        assert response.code == 400, (body, response)
        assert response.json["errcode"] == errcode, (body, response)
    assert (await client.request("GET", f"profile/{me}")).json == before
    not_json = await client.request("PUT", f"profile/{me}/displayname", b"{not json", token=token,
                                    validate=False)
    assert not_json.code == 400 and not_json.json["errcode"] == "M_NOT_JSON"


@pytest_twisted.ensureDeferred
async def test_unsupported_keys(client):
    """Keys other than displayname and avatar_url: GET 404, PUT 403, DELETE 200, malformed keys 400."""
    user = await client.register()
    me, token = user["user_id"], user["access_token"]
    for key in ("m.tz", "com.example.field"):
        got = await client.request("GET", f"profile/{me}/{key}")
        assert got.code == 404 and got.json["errcode"] == "M_NOT_FOUND"
        put = await client.request("PUT", f"profile/{me}/{key}", {key: "Europe/London"}, token=token)
        assert put.code == 403 and put.json["errcode"] == "M_FORBIDDEN"
        deleted = await client.request("DELETE", f"profile/{me}/{key}", token=token)
        assert deleted.code == 200
    bad = await client.request("PUT", f"profile/{me}/Not-A-Key", {"Not-A-Key": 1}, token=token,
                               validate=False)
    assert bad.code == 400 and bad.json["errcode"] == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_changing_a_profile_needs_a_token(client):
    """Reading a profile needs no token, changing one does (401 M_MISSING_TOKEN)."""
    user = await client.register()
    me = user["user_id"]
    assert (await client.request("GET", f"profile/{me}")).code == 200
    for method, key, body in [("PUT", "displayname", {"displayname": "x"}),
                              ("PUT", "avatar_url", {"avatar_url": AVATAR}),
                              ("DELETE", "displayname", None)]:
        response = await client.request(method, f"profile/{me}/{key}", body)
        assert response.code == 401 and response.json["errcode"] == "M_MISSING_TOKEN"


@pytest_twisted.ensureDeferred
async def test_guest_may_change_only_its_displayname(client):
    """A guest may set and delete its display name but not its avatar (403 M_GUEST_ACCESS_FORBIDDEN)."""
    guest = await client.register_guest()
    me, token = guest["user_id"], guest["access_token"]
    put = await client.request("PUT", f"profile/{me}/displayname", {"displayname": "Visitor"}, token=token)
    assert put.code == 200, put
    assert (await client.request("GET", f"profile/{me}/displayname")).json == {"displayname": "Visitor"}
    assert (await client.request("DELETE", f"profile/{me}/displayname", token=token)).code == 200
    for method, body in [("PUT", {"avatar_url": AVATAR}), ("DELETE", None)]:
        refused = await client.request(method, f"profile/{me}/avatar_url", body, token=token)
        assert refused.code == 403, refused
        assert refused.json["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"
