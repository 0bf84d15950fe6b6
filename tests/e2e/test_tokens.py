"""
Macaroon attenuation end to end: a token holder narrows their own token by
appending caveats, without asking the server; the server honours the
narrowing and refuses any caveat that would widen or change the token.
"""
import time

import pytest_twisted
from pymacaroons import Macaroon


def _attenuate(token: str, *caveats: str) -> str:
    """Append first-party caveats to a token, as any holder can."""
    macaroon = Macaroon.deserialize(token)
    for caveat in caveats:
        macaroon.add_first_party_caveat(caveat)
    return macaroon.serialize()


async def _whoami(client, token):
    return await client.request("GET", "account/whoami", token=token)


@pytest_twisted.ensureDeferred
async def test_method_caveat_allows_reads_only(client):
    """A token narrowed with 'method = GET' may call GET /account/whoami but gets 403 M_FORBIDDEN on POST /logout."""
    user = await client.register()
    read_only = _attenuate(user["access_token"], "method = GET")
    whoami = await _whoami(client, read_only)
    assert whoami.code == 200
    assert whoami.json["user_id"] == user["user_id"]
    logout = await client.request("POST", "logout", {}, token=read_only)
    assert logout.code == 403
    assert logout.json["errcode"] == "M_FORBIDDEN"
    # The refused logout did not log the device out.
    assert (await _whoami(client, user["access_token"])).code == 200


@pytest_twisted.ensureDeferred
async def test_time_caveat_in_the_past_is_a_soft_logout(client):
    """A token narrowed with 'time < <a past instant>' answers 401 M_UNKNOWN_TOKEN with soft_logout true."""
    user = await client.register()
    past = int(time.time() * 1000) - 60_000
    expired = _attenuate(user["access_token"], f"time < {past}")
    response = await _whoami(client, expired)
    assert response.code == 401
    assert response.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert response.json["soft_logout"] is True
    future = _attenuate(user["access_token"], f"time < {past + 3_600_000}")
    assert (await _whoami(client, future)).code == 200


@pytest_twisted.ensureDeferred
async def test_appended_user_id_cannot_impersonate(client):
    """Appending 'user_id = <someone else>' gets 401 M_UNKNOWN_TOKEN: the holder cannot become another user."""
    user = await client.register()
    victim = await client.register()
    forged = _attenuate(user["access_token"], f"user_id = {victim['user_id']}")
    response = await _whoami(client, forged)
    assert response.code == 401
    assert response.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert not response.json.get("soft_logout")
    also_device = _attenuate(user["access_token"], f"device_id = {victim['device_id']}")
    assert (await _whoami(client, also_device)).code == 401
    also_type = _attenuate(user["access_token"], "type = refresh")
    assert (await _whoami(client, also_type)).code == 401


@pytest_twisted.ensureDeferred
async def test_unknown_caveat_is_refused(client):
    """A caveat the server does not know (or a known key spelt loosely) makes the token 401 M_UNKNOWN_TOKEN."""
    user = await client.register()
    for caveat in ("admin = true", "method = get", "method=GET", "time < soon", "path_prefix = x"):
        response = await _whoami(client, _attenuate(user["access_token"], caveat))
        assert response.code == 401, caveat
        assert response.json["errcode"] == "M_UNKNOWN_TOKEN", caveat


@pytest_twisted.ensureDeferred
async def test_path_prefix_caveat(client):
    """A token narrowed to 'path_prefix = /_matrix/client/v3/account' may call whoami but not /capabilities."""
    user = await client.register()
    narrowed = _attenuate(user["access_token"], "path_prefix = /_matrix/client/v3/account")
    assert (await _whoami(client, narrowed)).code == 200
    capabilities = await client.request("GET", "capabilities", token=narrowed)
    assert capabilities.code == 403
    assert capabilities.json["errcode"] == "M_FORBIDDEN"
    # Nor can a dot-segment walk out of the prefix.
    escaped = await client.request(
        "GET", "/_matrix/client/v3/account/%2e%2e/capabilities", token=narrowed, validate=False
    )
    assert escaped.code == 404 and escaped.json["errcode"] == "M_UNRECOGNIZED", escaped


@pytest_twisted.ensureDeferred
async def test_logout_revokes_attenuated_tokens(client):
    """Logging out the original token also revokes every token attenuated from it, even one the guard has cached."""
    user = await client.register()
    narrowed = _attenuate(user["access_token"], "method = GET")
    assert (await _whoami(client, narrowed)).code == 200
    assert (await client.request("POST", "logout", {}, token=user["access_token"])).code == 200
    response = await _whoami(client, narrowed)
    assert response.code == 401
    assert response.json["errcode"] == "M_UNKNOWN_TOKEN"


@pytest_twisted.ensureDeferred
async def test_token_cache_does_not_outlive_logout(client):
    """A token verified (and cached) a moment ago is refused right after its logout."""
    user = await client.register()
    for _ in range(3):
        assert (await _whoami(client, user["access_token"])).code == 200
    assert (await client.request("POST", "logout", {}, token=user["access_token"])).code == 200
    response = await _whoami(client, user["access_token"])
    assert response.code == 401
    assert response.json["errcode"] == "M_UNKNOWN_TOKEN"


@pytest_twisted.ensureDeferred
async def test_attenuated_refresh_token_is_refused(client):
    """A refresh token with an appended caveat cannot be refreshed: narrowing must not survive as a full new token."""
    user = await client.register()
    login = (await client.login(user["user_id"], refresh_token=True)).json
    narrowed = _attenuate(login["refresh_token"], "method = GET")
    response = await client.request("POST", "refresh", {"refresh_token": narrowed})
    assert response.code == 401
    assert response.json["errcode"] == "M_UNKNOWN_TOKEN"
    # The untouched refresh token still works.
    assert (await client.request("POST", "refresh", {"refresh_token": login["refresh_token"]})).code == 200


@pytest_twisted.ensureDeferred
async def test_tampered_signature_is_refused(client):
    """A token re-signed with a guessed key, its caveats unchanged, does not verify: 401 M_UNKNOWN_TOKEN."""
    user = await client.register()
    macaroon = Macaroon.deserialize(user["access_token"])
    forged = Macaroon(
        location=macaroon.location, identifier=macaroon.identifier, key=b"guessed key",
        version=macaroon.version,
    )
    for caveat in macaroon.first_party_caveats():
        forged.add_first_party_caveat(caveat.caveat_id)
    response = await _whoami(client, forged.serialize())
    assert response.code == 401
    assert response.json["errcode"] == "M_UNKNOWN_TOKEN"


@pytest_twisted.ensureDeferred
async def test_appended_guest_caveat_makes_the_token_invalid(client):
    """Appending 'guest = true' (a caveat holders may not add) gets 401 M_UNKNOWN_TOKEN, not a guest token."""
    user = await client.register()
    response = await _whoami(client, _attenuate(user["access_token"], "guest = true"))
    assert response.code == 401 and response.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert "soft_logout" not in response.json or response.json["soft_logout"] is False


@pytest_twisted.ensureDeferred
async def test_other_spellings_of_a_token_are_refused(client):
    """Only the token as issued works: with padding, an extra byte or a changed last character it is 401."""
    user = await client.register()
    token = user["access_token"]
    assert (await _whoami(client, token)).code == 200
    for spelling in (token + "=", token + "==", token + "A", token[:-1] + ("B" if token[-1] != "B" else "C")):
        response = await _whoami(client, spelling)
        assert response.code == 401, spelling
        assert response.json["errcode"] == "M_UNKNOWN_TOKEN"
