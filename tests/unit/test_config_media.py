"""The [media] configuration section (ruma_tx.runtime.config_media)."""
import pytest

from ruma_tx.matrix.media import DEFAULT_THUMBNAIL_SIZES, ThumbnailSize
from ruma_tx.runtime.config import ConfigError, load_config

MINIMAL = 'server_name = "example.org"\n'


def load(tmp_path, media: str):
    path = tmp_path / "ruma.toml"
    path.write_text(MINIMAL + media)
    return load_config(path)


def test_defaults_follow_synapse_and_the_spec(tmp_path):
    """50 MiB uploads, 5 pending ids for 24 h, the spec's thumbnail sizes, local files, legacy endpoints frozen."""
    media = load(tmp_path, "").media
    assert media.max_upload_size == 50 * 1024 * 1024
    assert (media.max_pending_uploads, media.unused_expiration_ms) == (5, 86_400_000)
    assert media.thumbnail_size_list() == DEFAULT_THUMBNAIL_SIZES
    assert (media.backend, media.s3, media.max_bytes_per_user, media.legacy_unauthenticated) == (
        "local", None, None, False)


def test_sizes_quota_and_s3_are_read(tmp_path):
    """Thumbnail sizes, a quota and an S3 bucket come from their keys."""
    media = load(tmp_path, '[media]\nmax_bytes_per_user = 1000\nbackend = "s3"\n'
                           'thumbnail_sizes = [{ width = 10, height = 20, method = "crop" }]\n'
                           '[media.s3]\nbucket = "b"\nendpoint_url = "http://127.0.0.1:9000"\n').media
    assert media.max_bytes_per_user == 1000
    assert media.thumbnail_size_list() == (ThumbnailSize(10, 20, "crop"),)
    assert media.s3 is not None and (media.s3.bucket, media.s3.endpoint_url, media.s3.prefix) == (
        "b", "http://127.0.0.1:9000", "")


@pytest.mark.parametrize("text, key", [
    ("[media]\nmax_upload_size = 0\n", "media.max_upload_size"),
    ("[media]\nmax_pending_uploads = 0\n", "media.max_pending_uploads"),
    ("[media]\nunused_expiration_ms = 10\n", "media.unused_expiration_ms"),
    ("[media]\nthumbnail_sizes = []\n", "media.thumbnail_sizes"),
    ('[media]\nthumbnail_sizes = [{ width = 0, height = 1 }]\n', "media.thumbnail_sizes[0]"),
    ('[media]\nthumbnail_sizes = [{ width = 1, height = 1, method = "fill" }]\n',
     "media.thumbnail_sizes[0].method"),
    ("[media]\nthumbnail_threads = 0\n", "media.thumbnail_threads"),
    ('[media]\nbackend = "ftp"\n', "media.backend"),
    ('[media]\nbackend = "s3"\n', "media.s3"),
    ('[media.s3]\nregion = "x"\n', "media.s3.bucket"),
    ("[media]\nlegacy_unauthenticated = 1\n", "media.legacy_unauthenticated"),
    ("[media]\nurl_preview_max_bytes = 10\n", "media.url_preview_max_bytes"),
    ("[media]\nurl_preview_timeout_s = 0\n", "media.url_preview_timeout_s"),
    ("[media]\nurl_preview_url_blocklist = [{}]\n", "media.url_preview_url_blocklist[0]"),
    ('[media]\nurl_preview_url_blocklist = [{ host = "x" }]\n', "media.url_preview_url_blocklist[0].host"),
    ('[media]\nurl_preview_url_blocklist = [{ path = "^(" }]\n', "media.url_preview_url_blocklist[0].path"),
])
def test_bad_values_stop_the_server_naming_the_key(tmp_path, text, key):
    """A bad [media] value is a ConfigError that names its key."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert key in str(caught.value)


def test_url_previews_are_off_by_default_and_configurable(tmp_path):
    """Previews are off; on, they read their size and time limits and a Synapse-style URL blocklist."""
    media = load(tmp_path, "").media
    assert (media.url_preview_enabled, media.url_preview_max_bytes, media.url_preview_timeout_s,
            media.url_preview_url_blocklist) == (False, 10 * 1024 * 1024, 10.0, ())
    media = load(tmp_path, '[media]\nurl_preview_enabled = true\nurl_preview_max_bytes = 4096\n'
                           'url_preview_timeout_s = 2\n'
                           'url_preview_url_blocklist = [{ hostname = "*.lan", scheme = "^https?$" }]\n').media
    assert (media.url_preview_enabled, media.url_preview_max_bytes, media.url_preview_timeout_s) == (True, 4096, 2.0)
    assert media.url_preview_url_blocklist[0].parts() == {"scheme": "^https?$", "hostname": "*.lan"}
