"""The [federation] settings (L{ruma_tx.runtime.config_federation}) and the "federation" listener."""
import pytest

from ruma_tx.runtime.config import ConfigError, load_config

MINIMAL = 'server_name = "example.org"\n'
FEDERATION_LISTENER = '[[listeners]]\nendpoint = "tcp:8448"\nresources = ["federation"]\n'


def load(tmp_path, text):
    path = tmp_path / "ruma.toml"
    path.write_text(MINIMAL + text)
    return load_config(path)


def refused(tmp_path, text, *fragments):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_federation_is_off_by_default(tmp_path):
    """A fresh config federates with nobody, verifies certificates and trusts no notary."""
    federation = load(tmp_path, "").federation
    assert not federation.enabled and federation.verify_certificates
    assert federation.domain_allowlist == () and federation.trusted_key_servers == ()


def test_a_federation_listener_needs_federation_on_and_its_own_listener(tmp_path):
    """A "federation" listener is refused with federation off, or shared with another resource."""
    refused(tmp_path, FEDERATION_LISTENER, "ruma.toml", "listeners[0].resources", "federation.enabled")
    refused(tmp_path, '[[listeners]]\nresources = ["client", "federation"]\n[federation]\nenabled = true\n',
            "listeners[0].resources", "of its own")
    config = load(tmp_path, FEDERATION_LISTENER + "[federation]\nenabled = true\n")
    assert config.listeners[0].resources == ("federation",)


def test_ca_file_is_relative_to_the_config_and_must_exist(tmp_path):
    """ca_file is read relative to the config file; a missing one is refused at start."""
    refused(tmp_path, '[federation]\nca_file = "ca.crt"\n', "federation.ca_file", "no such file")
    (tmp_path / "ca.crt").write_text("x")
    assert load(tmp_path, '[federation]\nca_file = "ca.crt"\n').federation_ca_path == tmp_path / "ca.crt"


@pytest.mark.parametrize("text, key", [
    ('domain_allowlist = ["not a name"]', "federation.domain_allowlist[0]"),
    ('trusted_key_servers = ["bad/name"]', "federation.trusted_key_servers[0]"),
    ('ip_range_allowlist = ["300.0.0.0/8"]', "federation.ip_range_allowlist"),
    ("timeout_s = 0", "federation.timeout_s"),
    ("max_response_bytes = 10", "federation.max_response_bytes"),
    ("rate_limit_per_second = 0", "federation.rate_limit_per_second"),
    ("rate_limit_per_second = nan", "federation.rate_limit_per_second"),
    ("rate_limit_burst_count = 0", "federation.rate_limit_burst_count"),
])
def test_bad_values_are_refused(tmp_path, text, key):
    """Each unusable [federation] value is refused, naming its key."""
    refused(tmp_path, f"[federation]\n{text}\n", key)
