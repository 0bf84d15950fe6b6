"""
The pushers API through the real daemon: C{GET /pushers} and
C{POST /pushers/set} (create, update, delete, C{append}, validation),
and pushers going away with the device that set them.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted

from push_gateway import get_pushers, pusher_body, set_pusher

URL = "https://push.example.org/_matrix/push/v1/notify"


async def post_set(client, user: dict, body: dict):
    return await client.request("POST", "pushers/set", body, token=user["access_token"])


@pytest_twisted.ensureDeferred
async def test_set_then_get_shows_the_pusher(client):
    """A pusher set with every field is listed with every field as the spec's Pusher says."""
    user = await client.register()
    assert await get_pushers(client, user) == []
    await set_pusher(client, user, URL, pushkey="APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ",
                     data={"format": "event_id_only", "custom": [1, 2]}, profile_tag="xyz")
    assert await get_pushers(client, user) == [{
        "pushkey": "APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ", "kind": "http",
        "app_id": "org.example.app", "app_display_name": "Example App", "device_display_name": "Phone",
        "profile_tag": "xyz", "lang": "en",
        "data": {"url": URL, "format": "event_id_only", "custom": [1, 2]},
    }]


@pytest_twisted.ensureDeferred
async def test_setting_again_updates_and_kind_null_deletes(client):
    """The same app id and pushkey updates the pusher in place; kind null deletes it (twice is fine)."""
    user = await client.register()
    await set_pusher(client, user, URL, pushkey="one")
    await set_pusher(client, user, URL, pushkey="two")
    await set_pusher(client, user, URL.replace("push.", "push2."), pushkey="one", lang="fr",
                     device_display_name="Tablet")
    pushers = await get_pushers(client, user)
    assert [(p["pushkey"], p["lang"], p["device_display_name"], p["data"]["url"]) for p in pushers] == [
        ("one", "fr", "Tablet", "https://push2.example.org/_matrix/push/v1/notify"),
        ("two", "en", "Phone", URL),
    ]
    for _ in range(2):
        response = await post_set(client, user, {"kind": None, "app_id": "org.example.app", "pushkey": "one"})
        assert response.code == 200 and response.json == {}, response
    assert [p["pushkey"] for p in await get_pushers(client, user)] == ["two"]


@pytest_twisted.ensureDeferred
async def test_append_false_takes_the_pushkey_from_other_users(client):
    """
    Without append, a pushkey set by one user is removed from every other
    user; with append true, the others keep theirs.
    """
    first, second, third = await client.register(), await client.register(), await client.register()
    await set_pusher(client, first, URL, pushkey="shared")
    await set_pusher(client, second, URL, pushkey="shared", append=True)
    assert len(await get_pushers(client, first)) == 1
    await set_pusher(client, third, URL, pushkey="shared")
    assert await get_pushers(client, first) == []
    assert await get_pushers(client, second) == []
    assert [p["pushkey"] for p in await get_pushers(client, third)] == ["shared"]


#: A change made to a valid body, the errcode it gets, and a word its message must say.
BAD_BODIES = [
    ({"app_id": None, "pushkey": None, "app_display_name": None}, "M_MISSING_PARAM",
     "app_id, pushkey, app_display_name"),
    ({"lang": None, "device_display_name": None}, "M_MISSING_PARAM", "device_display_name, lang"),
    ({"kind": "email", "data": {}}, "M_INVALID_PARAM", "mail"),
    ({"kind": "carrier-pigeon"}, "M_INVALID_PARAM", "kind"),
    ({"app_id": "x" * 65}, "M_INVALID_PARAM", "app_id"),
    ({"pushkey": "é" * 257}, "M_INVALID_PARAM", "pushkey"),  # 257 characters, 514 bytes
    ({"data": {}}, "M_MISSING_PARAM", "url"),
    ({"data": {"url": "https://push.example.org/notify"}}, "M_INVALID_PARAM", "/_matrix/push/v1/notify"),
    ({"data": {"url": "/_matrix/push/v1/notify"}}, "M_INVALID_PARAM", "absolute"),
    ({"data": {"url": "ftp://push.example.org/_matrix/push/v1/notify"}}, "M_INVALID_PARAM", "absolute"),
    ({"data": {"url": URL, "format": "full"}}, "M_INVALID_PARAM", "format"),
    ({"data": "https://push.example.org/_matrix/push/v1/notify"}, "M_BAD_JSON", "data"),
    ({"append": "yes"}, "M_BAD_JSON", "append"),
    ({"lang": 5}, "M_BAD_JSON", "lang"),
]


@pytest.mark.parametrize("change, errcode, mentions", BAD_BODIES)
@pytest_twisted.ensureDeferred
async def test_invalid_pusher_is_refused_and_nothing_stored(client, change, errcode, mentions):
    """Each invalid body gets a 400 with the right errcode and a message naming the problem; nothing is stored."""
    user = await client.register()
    body = {key: value for key, value in {**pusher_body(user, URL), **change}.items() if value is not None}
    response = await post_set(client, user, body)
    assert response.code == 400, response
    assert response.json["errcode"] == errcode
    assert mentions in response.json["error"]
    assert await get_pushers(client, user) == []


@pytest_twisted.ensureDeferred
async def test_email_pushers_are_refused_with_the_reason(client):
    """kind email gets a 400 saying this server sends no email."""
    user = await client.register()
    response = await post_set(client, user, {
        "kind": "email", "app_id": "m.email", "pushkey": "alice@example.org", "app_display_name": "Email",
        "device_display_name": "alice@example.org", "lang": "en", "data": {}})
    assert response.code == 400, response
    assert response.json == {"errcode": "M_INVALID_PARAM",
                             "error": "Email pushers are not supported: this server does not send email"}


@pytest_twisted.ensureDeferred
async def test_pushers_go_with_their_device(client):
    """
    Logging out a device removes the pushers it set; deleting a device
    does too; the pushers of the user's other devices stay.
    """
    user = await client.register()
    user_id = user["user_id"]
    phone = (await client.login(user_id)).json
    tablet = (await client.login(user_id)).json
    await set_pusher(client, {**user, **phone}, URL, pushkey="phone")
    await set_pusher(client, {**user, **tablet}, URL, pushkey="tablet")
    await set_pusher(client, user, URL, pushkey="first")
    assert {p["pushkey"] for p in await get_pushers(client, user)} == {"phone", "tablet", "first"}

    response = await client.request("POST", "logout", {}, token=phone["access_token"])
    assert response.code == 200, response
    assert {p["pushkey"] for p in await get_pushers(client, user)} == {"tablet", "first"}

    response = await client.with_password_uia("DELETE", f"devices/{quote(tablet['device_id'])}", {}, user)
    assert response.code == 200, response
    assert [p["pushkey"] for p in await get_pushers(client, user)] == ["first"]


@pytest_twisted.ensureDeferred
async def test_a_pushkey_set_again_from_another_device_moves_there(client):
    """Setting the same pusher from another device makes it that device's: it goes when that device logs out."""
    user = await client.register()
    phone = (await client.login(user["user_id"])).json
    await set_pusher(client, user, URL, pushkey="moving")
    await set_pusher(client, {**user, **phone}, URL, pushkey="moving")
    response = await client.request("POST", "logout", {}, token=phone["access_token"])
    assert response.code == 200, response
    assert await get_pushers(client, user) == []


@pytest_twisted.ensureDeferred
async def test_guests_may_not_use_pushers(client):
    """Pushers are not on the spec's guest allow-list: a guest gets 403 M_GUEST_ACCESS_FORBIDDEN."""
    guest = await client.register_guest()
    for method, path, body in (("GET", "pushers", None), ("POST", "pushers/set", pusher_body(guest, URL))):
        response = await client.request(method, path, body, token=guest["access_token"])
        assert response.code == 403, response
        assert response.json["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"
