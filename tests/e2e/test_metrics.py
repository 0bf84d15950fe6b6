"""
Observability through the real daemon: Prometheus metrics on a listener
serving "metrics", and GET /health on it and on the client listener,
answering 503 while the daemon's database refuses connections.
"""
from __future__ import annotations

import json
import re
import types
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
import pytest_twisted
from conftest import free_port
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from polling import DEADLINE_S

SEND_ROUTE = "PUT /_matrix/client/v3/rooms/<room_id>/send/<event_type>/<txn_id>"


@pytest.fixture(scope="module")
def observed(start_homeserver):
    """A daemon with a "metrics" listener; returns (server, metrics listener's base URL)."""
    port = free_port()
    server = start_homeserver(
        "[rate_limits]\nenabled = false\n"
        f'[[listeners]]\nendpoint = "tcp:{port}:interface=127.0.0.1"\nresources = ["metrics"]\n')
    return server, f"http://127.0.0.1:{port}"


async def scrape(metrics_client) -> dict[tuple[str, tuple], float]:
    """Every sample of GET /metrics, keyed by (name, sorted labels)."""
    response = await metrics_client.request("GET", "/metrics")
    assert response.code == 200, response
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.raw.decode())
            for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def send_message(client, user: dict, room_id: str, txn_id: str) -> None:
    response = await client.request(
        "PUT", f"rooms/{quote(room_id)}/send/m.room.message/{txn_id}",
        {"msgtype": "m.text", "body": "hello"}, token=user["access_token"])
    assert response.code == 200, response


@pytest_twisted.ensureDeferred
async def test_metrics_count_requests_by_route_and_events_persisted(observed, make_client):
    """
    /metrics counts the client's requests under their route template and
    status, counts each sent event as persisted, and never puts a room or
    user id in a label.
    """
    server, metrics_url = observed
    client = make_client(server)
    metrics_client = make_client(types.SimpleNamespace(base_url=metrics_url))
    alice = await client.register()
    created = await client.request("POST", "createRoom", {}, token=alice["access_token"])
    assert created.code == 200, created
    room_id = created.json["room_id"]
    await send_message(client, alice, room_id, "first")
    before = await scrape(metrics_client)

    await send_message(client, alice, room_id, "second")
    missing = await client.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/nothing-here")
    assert missing.code == 404, missing
    after = await scrape(metrics_client)

    sent = value(after, "ruma_http_requests_total", endpoint=SEND_ROUTE, status="200")
    assert sent == value(before, "ruma_http_requests_total", endpoint=SEND_ROUTE, status="200") + 1
    assert value(after, "ruma_http_request_duration_seconds_count", endpoint=SEND_ROUTE) == sent
    assert value(after, "ruma_http_requests_total", endpoint="unrouted", status="404") >= 1
    assert (value(after, "ruma_events_persisted_total", origin="local")
            == value(before, "ruma_events_persisted_total", origin="local") + 1)
    assert value(after, "ruma_stream_position") > value(before, "ruma_stream_position")
    labels = {label for _, sample_labels in after for pair in sample_labels for label in pair}
    assert not any(room_id in label or alice["user_id"] in label for label in labels), labels
    assert not any(label.startswith("!") or "/rooms/!" in label for label in labels), labels
    for name in ("ruma_sync_waiters", "ruma_database_pool_connections_in_use", "ruma_reactor_lag_seconds",
                 "process_resident_memory_bytes", "process_cpu_seconds_total"):
        assert any(key[0] == name for key in after), name
    assert value(after, "ruma_database_query_duration_seconds_count") > 0
    assert value(after, "process_resident_memory_bytes") > 0


@pytest_twisted.ensureDeferred
async def test_a_waiting_sync_shows_as_a_waiter(observed, make_client):
    """
    A long-polling /sync is counted in ruma_sync_waiters while it waits; the change that
    answers it counts as a wake-up.
    """
    server, metrics_url = observed
    client = make_client(server)
    metrics_client = make_client(types.SimpleNamespace(base_url=metrics_url))
    bob = await client.register()
    first = await client.request("GET", "sync", token=bob["access_token"])
    assert first.code == 200, first
    wakeups_before = value(await scrape(metrics_client), "ruma_sync_wakeups_total")
    waiting = defer.ensureDeferred(client.request(
        "GET", "sync", token=bob["access_token"],
        query={"since": first.json["next_batch"], "timeout": "120000"}))
    for _ in range(DEADLINE_S * 10):
        if value(await scrape(metrics_client), "ruma_sync_waiters") >= 1:
            break
        await deferLater(reactor, 0.1, lambda: None)
    else:
        pytest.fail("the long-poll never showed as a waiter")
    created = await client.request("POST", "createRoom", {}, token=bob["access_token"])  # wakes it
    assert created.code == 200, created
    answered = await waiting
    assert answered.code == 200, answered
    assert created.json["room_id"] in answered.json["rooms"]["join"]
    assert value(await scrape(metrics_client), "ruma_sync_wakeups_total") >= wakeups_before + 1


@pytest_twisted.ensureDeferred
async def test_health_answers_ok_on_both_listeners_without_a_token(observed, make_client):
    """GET /health is 200 {"status": "ok"} on the client and metrics listeners; the metrics one serves no client API."""
    server, metrics_url = observed
    metrics_client = make_client(types.SimpleNamespace(base_url=metrics_url))
    for client in (make_client(server), metrics_client):
        response = await client.request("GET", "/health")
        assert response.code == 200, response
        assert response.json == {"status": "ok"}
    versions = await metrics_client.request("GET", "/_matrix/client/versions")
    assert versions.code == 404 and versions.json["errcode"] == "M_UNRECOGNIZED", versions
    assert (await make_client(server).request("GET", "/metrics")).code == 404


async def health_until(client, code: int) -> dict:
    """Poll GET /health until it answers C{code}; its body."""
    for _ in range(DEADLINE_S * 10):
        response = await client.request("GET", "/health")
        if response.code == code:
            return response.json
        await deferLater(reactor, 0.1, lambda: None)
    pytest.fail(f"/health never answered {code}")


@pytest_twisted.ensureDeferred
async def test_health_is_503_while_the_database_refuses_connections(start_homeserver, pg_cluster, make_client):
    """
    With its database refusing connections (its sessions ended), the
    daemon's /health answers 503 with a Matrix error; once connections are
    allowed again, 200. Only this daemon's own database is touched.
    """
    server = start_homeserver()
    client = make_client(server)
    assert (await client.request("GET", "/health")).code == 200
    name = urlparse(server.dsn).path.lstrip("/")
    pg_cluster.refuse_connections(name)
    try:
        body = await health_until(client, 503)
        assert body["errcode"] == "M_UNKNOWN", body
        assert "database" in body["error"], body
    finally:
        pg_cluster.allow_connections(name)
    assert await health_until(client, 200) == {"status": "ok"}


@pytest_twisted.ensureDeferred
async def test_the_grafana_dashboard_reads_metrics_the_daemon_exports(observed, make_client):
    """Every series contrib/grafana-dashboard.json queries is served by /metrics (the federation gauge with federation on)."""
    server, metrics_url = observed
    await make_client(server).register()   # something counted, so histograms have samples
    samples = await scrape(make_client(types.SimpleNamespace(base_url=metrics_url)))
    served = {name for name, _ in samples}
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "contrib" / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\b(?:ruma|process)_[a-z_]+", target["expr"])}
    assert queried, "the dashboard queries nothing"
    federation_only = {"ruma_federation_destinations_backing_off", "ruma_federation_destinations_pending"}
    assert queried - served == federation_only
