"""Reading C{mxc://} URIs out of event content (what the admin API counts as a room's media)."""
import pytest

from ruma_tx.matrix.media import parse_mxc_uri


@pytest.mark.parametrize("uri, expected", [
    ("mxc://example.org/abcDEF123_-", ("example.org", "abcDEF123_-")),
    ("mxc://localhost:8448/media", ("localhost:8448", "media")),
    ("mxc://[::1]:8448/media", ("[::1]:8448", "media")),
])
def test_well_formed_uris_are_split(uri, expected):
    assert parse_mxc_uri(uri) == expected


@pytest.mark.parametrize("uri", [
    "https://example.org/media",     # not mxc
    "mxc://example.org",             # no media id
    "mxc://example.org/",            # empty media id
    "mxc://example.org/a/b",         # a path, not a media id
    "mxc://exa mple.org/media",      # bad server name
    "mxc:///media",                  # no server name
    None, 42, {"url": "mxc://example.org/media"},
])
def test_anything_else_is_not_media(uri):
    assert parse_mxc_uri(uri) is None
