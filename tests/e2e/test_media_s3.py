"""
The media repository on an S3-compatible store, end to end: the daemon
talks to moto's S3 server (started on a free local port) instead of AWS.
"""
import hashlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import pytest_twisted
from conftest import free_port
from media_helpers import download, image_bytes, opened, stored_files, thumbnail, upload

BUCKET = "ruma-media"
REGION = "us-east-1"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """moto's S3 server on a free port, with an empty bucket."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                                "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
    bucket_client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    process.terminate()
    process.wait(10)
    log.close()


def bucket_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **KEYS)


def objects(endpoint: str) -> dict[str, bytes]:
    """Every object of the bucket: key -> bytes."""
    s3 = bucket_client(endpoint)
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


@pytest.fixture(scope="module")
def s3_server(start_homeserver, s3_endpoint):
    return start_homeserver(
        "[rate_limits]\nenabled = false\n"
        '[media]\nbackend = "s3"\n'
        f'[media.s3]\nbucket = "{BUCKET}"\nendpoint_url = "{s3_endpoint}"\nregion = "{REGION}"\n'
        f'access_key_id = "{KEYS["aws_access_key_id"]}"\nsecret_access_key = "{KEYS["aws_secret_access_key"]}"\n'
        'prefix = "media/"\n')


@pytest_twisted.ensureDeferred
async def test_media_lives_in_the_bucket(s3_server, s3_endpoint, make_client):
    """Uploads go to the bucket (once per content, named by its hash), never to local disk, and download whole or in part."""
    client = make_client(s3_server)
    token = (await client.register())["access_token"]
    data = os.urandom(9 * 1024 * 1024 + 17)  # past boto3's multipart threshold (8 MiB)
    first = await upload(client, token, data, "application/zip", "big.zip")
    second = await upload(client, token, data, "application/zip", "copy.zip")
    digest = hashlib.sha256(data).hexdigest()
    stored = objects(s3_endpoint)
    assert stored[f"media/{digest[:2]}/{digest[2:4]}/{digest}"] == data
    assert list(stored.values()).count(data) == 1
    assert stored_files(s3_server) == []
    for uri in (first, second):
        response = await download(client, token, uri)
        assert response.code == 200 and response.raw == data
    part = await download(client, token, first, headers={"Range": "bytes=1000-1999"})
    assert (part.code, part.raw) == (206, data[1000:2000])


@pytest_twisted.ensureDeferred
async def test_thumbnails_from_the_bucket(s3_server, s3_endpoint, make_client):
    """A thumbnail is made from the object and kept in the bucket; the second request reads it back."""
    client = make_client(s3_server)
    token = (await client.register())["access_token"]
    uri = await upload(client, token, image_bytes((400, 300)), "image/png")
    before = set(objects(s3_endpoint))
    made = await thumbnail(client, token, uri, width=96, height=96, method="crop")
    assert made.code == 200 and opened(made.raw).size == (96, 96)
    assert len(set(objects(s3_endpoint)) - before) == 1
    again = await thumbnail(client, token, uri, width=96, height=96, method="crop")
    assert again.raw == made.raw
