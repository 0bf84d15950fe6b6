"""
The [voip], [well_known] and listener-resource settings
(L{ruma_tx.runtime.config_clients}), and the support rules they use
(L{ruma_tx.matrix.support}).
"""
import pytest

from ruma_tx.matrix.support import SupportContact, contact_problem, support_body
from ruma_tx.runtime.config import ConfigError, load_config

MINIMAL = 'server_name = "example.org"\n'


def load(tmp_path, text):
    path = tmp_path / "ruma.toml"
    path.write_text(MINIMAL + text)
    return load_config(path)


def refused(tmp_path, text, *fragments):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_voip_defaults_hand_out_nothing(tmp_path):
    """Without a [voip] section there is no TURN server, and guests would be allowed (Synapse's default)."""
    config = load(tmp_path, "")
    assert not config.voip.turn_settings().configured
    assert config.voip.turn_allow_guests is True
    assert config.voip.turn_user_lifetime_s == 3600


def test_voip_shared_secret_inline(tmp_path):
    """An inline shared secret configures time-limited credentials."""
    config = load(tmp_path, '[voip]\nturn_uris = ["turn:t.example.org"]\nturn_shared_secret = "abc"\n')
    settings = config.voip.turn_settings()
    assert settings.configured and settings.shared_secret == "abc"
    assert "abc" not in repr(config)


def test_voip_shared_secret_from_a_file(tmp_path):
    """The secret is read from an absolute path, without its trailing newline."""
    secret_file = tmp_path / "turn.secret"
    secret_file.write_text("from-the-file\n")
    config = load(tmp_path, f'[voip]\nturn_uris = ["turns:t.example.org:5349"]\n'
                            f'turn_shared_secret_path = "{secret_file}"\n')
    assert config.voip.turn_settings().shared_secret == "from-the-file"
    assert "from-the-file" not in repr(config)


@pytest.mark.parametrize("text, key", [
    ('turn_uris = ["stun:s.example.org"]\nturn_shared_secret = "x"', "voip.turn_uris[0]"),
    ('turn_uris = ["turn:t"]', "voip.turn_uris"),
    ('turn_shared_secret = "x"', "voip.turn_uris"),
    ('turn_uris = ["turn:t"]\nturn_shared_secret = "x"\nturn_shared_secret_path = "/x"',
     "voip.turn_shared_secret_path"),
    ('turn_uris = ["turn:t"]\nturn_username = "u"', "voip.turn_password"),
    ('turn_uris = ["turn:t"]\nturn_shared_secret = "x"\nturn_username = "u"\nturn_password = "p"',
     "voip.turn_username"),
    ('turn_uris = ["turn:t"]\nturn_shared_secret_path = "relative/secret"', "voip.turn_shared_secret_path"),
    ('turn_uris = ["turn:t"]\nturn_shared_secret_path = "/nonexistent/turn.secret"',
     "voip.turn_shared_secret_path"),
    ('turn_uris = ["turn:t"]\nturn_shared_secret = ""', "voip.turn_shared_secret"),
    ('turn_uris = ["turn:t"]\nturn_shared_secret = "x"\nturn_user_lifetime_s = 0', "voip.turn_user_lifetime_s"),
])
def test_voip_settings_that_cannot_work_are_refused(tmp_path, text, key):
    """Unusable TURN settings stop the server at start with an error naming the key."""
    refused(tmp_path, "[voip]\n" + text + "\n", key)


def test_an_empty_secret_file_is_refused(tmp_path):
    """A secret file holding only whitespace is an error, not an empty secret."""
    secret_file = tmp_path / "empty.secret"
    secret_file.write_text("\n")
    refused(tmp_path, f'[voip]\nturn_uris = ["turn:t"]\nturn_shared_secret_path = "{secret_file}"\n',
            "voip.turn_shared_secret_path", "empty")


def test_support_contacts_are_read(tmp_path):
    """[well_known] support_contacts become SupportContacts, in order."""
    config = load(tmp_path, '[well_known]\nsupport_page = "https://example.org/help"\nsupport_contacts = [\n'
                            '  { matrix_id = "@admin:example.org", role = "m.role.admin" },\n'
                            '  { email_address = "sec@example.org", role = "m.role.security" },\n]\n')
    assert config.well_known.support_contacts == (
        SupportContact(role="m.role.admin", matrix_id="@admin:example.org"),
        SupportContact(role="m.role.security", email_address="sec@example.org"),
    )


@pytest.mark.parametrize("text, fragment", [
    ('support_page = "example.org/help"', "well_known.support_page"),
    ('support_contacts = [{ role = "m.role.admin" }]', "well_known.support_contacts[0]"),
    ('support_contacts = [{ matrix_id = "admin", role = "m.role.admin" }]', "well_known.support_contacts[0]"),
    ('support_contacts = [{ email_address = "a@b", role = "m.role.boss" }]', "m.role.boss"),
    ('support_contacts = [{ email_address = "a@b" }]', "support_contacts[0].role"),
])
def test_bad_support_settings_are_refused(tmp_path, text, fragment):
    """A support page that is not a URL or a contact the spec would not allow is refused at start."""
    refused(tmp_path, "[well_known]\n" + text + "\n", fragment)


def test_listeners_may_serve_the_openid_resource(tmp_path):
    """'openid' is a listener resource beside 'client'; anything else is refused."""
    config = load(tmp_path, '[[listeners]]\nresources = ["openid"]\n')
    assert config.listeners[0].resources == ("openid",)
    refused(tmp_path, '[[listeners]]\nresources = ["federation"]\n', "listeners[0].resources", "federation")


def test_the_metrics_resource_is_served_alone(tmp_path):
    """'metrics' is a listener resource of its own: beside another it is refused at start."""
    config = load(tmp_path, '[[listeners]]\nresources = ["metrics"]\n')
    assert config.listeners[0].resources == ("metrics",)
    refused(tmp_path, '[[listeners]]\nresources = ["client", "metrics"]\n', "listeners[0].resources",
            "'metrics' is served on a listener of its own")


def test_support_body_only_with_something_to_tell():
    """No page and no contacts: None (the endpoint's 404); otherwise only the fields set."""
    assert support_body(None, ()) is None
    assert support_body("https://example.org/help", ()) == {"support_page": "https://example.org/help"}
    assert support_body(None, [SupportContact(role="m.role.admin", email_address="a@example.org")]) == {
        "contacts": [{"email_address": "a@example.org", "role": "m.role.admin"}]}


@pytest.mark.parametrize("role, ok", [
    ("m.role.admin", True), ("m.role.security", True), ("org.example.moderator", True),
    ("m.role.other", False), ("Org.Example", False), ("", False),
])
def test_contact_roles(role, ok):
    """Roles are the spec's two or namespaced identifiers outside m."""
    problem = contact_problem(SupportContact(role=role, matrix_id="@a:example.org"))
    assert (problem is None) == ok
