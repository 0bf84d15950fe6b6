"""The request log: one line per request, as text or as JSON lines an operator's log pipeline parses."""
import json

import pytest_twisted


@pytest_twisted.ensureDeferred
async def test_json_logs_carry_one_structured_record_per_request(start_homeserver, make_client):
    """
    With twistd's --logger set to ruma_tx's JSON observer, every log line is a JSON object,
    and a request's record names who asked what, its route, status, size and duration,
    but never the access token.
    """
    server = start_homeserver(twistd_options=("--logger", "ruma_tx.logs.json_observer"))
    client = make_client(server)
    user = await client.register()
    whoami = await client.request("GET", "account/whoami", token=user["access_token"])
    assert whoami.code == 200
    missing = await client.request("GET", "rooms/!nope:test.local/state", token=user["access_token"])
    assert missing.code == 403
    server.stop()
    records = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    requests = [r for r in records if r.get("method")]
    whoami_record = next(r for r in requests if r["path"] == "/_matrix/client/v3/account/whoami")
    assert whoami_record["user_id"] == user["user_id"]
    assert whoami_record["code"] == 200
    assert whoami_record["route"] == "GET /_matrix/client/v3/account/whoami"
    assert whoami_record["level"] == "info" and isinstance(whoami_record["duration_ms"], float)
    assert whoami_record["bytes"] > 0 and whoami_record["ip"] == "127.0.0.1"
    assert any(r["code"] == 403 and r["route"] == "GET /_matrix/client/v3/rooms/<room_id>/state"
               for r in requests)
    assert user["access_token"] not in server.log()


@pytest_twisted.ensureDeferred
async def test_text_log_line_names_the_user(client):
    """The default text line carries the request id, the user and the status."""
    user = await client.register()
    response = await client.request("GET", "account/whoami", token=user["access_token"])
    request_id = response.headers["x-request-id"]
    line = next(line for line in client.server.log().splitlines() if f" {request_id} " in line
                and "whoami" in line)
    assert user["user_id"] in line and " 200 " in line
