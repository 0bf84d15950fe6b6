"""
TURN credentials (L{ruma_tx.matrix.turn}) and the service handing them out
(L{ruma_tx.services.voip}): the time-limited form coturn's use-auth-secret
checks, static credentials, and when there is nothing to hand out.
"""
import base64
import hashlib
import hmac

import pytest
from twisted.internet.task import Clock

from ruma_tx.matrix.errors import Forbidden, NotFound
from ruma_tx.matrix.turn import TurnSettings, turn_credentials
from ruma_tx.services.voip import TurnServer

URIS = ("turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp")
SECRET = "s3cr3t-shared-with-coturn"


def coturn_password(secret: str, username: str) -> str:
    """What coturn computes to check a use-auth-secret password (TURN REST API draft)."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def test_shared_secret_credentials_expire_and_verify_with_the_secret():
    """The username is '<now + lifetime>:<user id>' and the password its base64 HMAC-SHA1 under the secret."""
    settings = TurnSettings(uris=URIS, shared_secret=SECRET, lifetime_s=600)
    body = turn_credentials(settings, "@alice:example.org", now_ms=1_700_000_000_999)
    assert body["username"] == "1700000600:@alice:example.org"
    assert body["password"] == coturn_password(SECRET, body["username"])
    assert body["uris"] == list(URIS)
    assert body["ttl"] == 600


def test_a_user_id_with_colons_stays_whole_after_the_expiry():
    """Only the first colon separates the expiry: the rest is the user id as given."""
    settings = TurnSettings(uris=URIS, shared_secret=SECRET)
    body = turn_credentials(settings, "@bob:example.org:8448", now_ms=1000)
    expiry, user_id = body["username"].split(":", 1)
    assert (int(expiry), user_id) == (1 + 3600, "@bob:example.org:8448")


def test_another_secret_gives_another_password():
    """A TURN server with a different secret would refuse the password."""
    ours = turn_credentials(TurnSettings(uris=URIS, shared_secret=SECRET), "@a:x", now_ms=0)
    theirs = turn_credentials(TurnSettings(uris=URIS, shared_secret=SECRET + "!"), "@a:x", now_ms=0)
    assert ours["username"] == theirs["username"]
    assert ours["password"] != theirs["password"]


def test_static_credentials_are_handed_out_as_they_are():
    """Without a shared secret, the configured username and password come back unchanged."""
    settings = TurnSettings(uris=URIS[:1], username="calls", password="pa55", lifetime_s=86400)
    assert turn_credentials(settings, "@alice:example.org", now_ms=5) == {
        "username": "calls", "password": "pa55", "uris": [URIS[0]], "ttl": 86400}


@pytest.mark.parametrize("settings", [
    TurnSettings(),
    TurnSettings(uris=URIS),
    TurnSettings(shared_secret=SECRET),
    TurnSettings(uris=URIS, username="only-a-username"),
])
def test_nothing_to_hand_out_without_uris_and_credentials(settings):
    """Settings lacking URIs or credentials are not configured, and build nothing."""
    assert not settings.configured
    with pytest.raises(ValueError):
        turn_credentials(settings, "@alice:example.org", now_ms=0)


def test_secrets_stay_out_of_the_settings_repr():
    """The shared secret and the static password never appear in a repr (logs, tracebacks)."""
    text = repr(TurnSettings(uris=URIS, shared_secret=SECRET, username="u", password="pa55"))
    assert SECRET not in text and "pa55" not in text


def test_the_service_reads_the_clock():
    """The expiry in the username follows the reactor's clock."""
    clock = Clock()
    clock.advance(1_000)
    turn = TurnServer(settings=TurnSettings(uris=URIS, shared_secret=SECRET, lifetime_s=60),
                      allow_guests=True, clock=clock)
    assert turn.credentials("@a:x", is_guest=False)["username"] == "1060:@a:x"


def test_the_service_answers_not_found_without_a_turn_server():
    """With no TURN server configured: 404 M_NOT_FOUND (MSC4166), not an empty 200."""
    turn = TurnServer(settings=TurnSettings(), allow_guests=True, clock=Clock())
    with pytest.raises(NotFound) as caught:
        turn.credentials("@a:x", is_guest=False)
    assert caught.value.errcode == "M_NOT_FOUND"


def test_the_service_refuses_guests_unless_allowed():
    """Guests are refused (403) when turn_allow_guests is false, served when it is true."""
    settings = TurnSettings(uris=URIS, shared_secret=SECRET)
    with pytest.raises(Forbidden):
        TurnServer(settings=settings, allow_guests=False, clock=Clock()).credentials("@1:x", is_guest=True)
    assert TurnServer(settings=settings, allow_guests=False, clock=Clock()).credentials("@a:x", is_guest=False)
    assert TurnServer(settings=settings, allow_guests=True, clock=Clock()).credentials("@1:x", is_guest=True)
