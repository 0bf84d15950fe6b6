#!/usr/bin/env python3
"""operators.py - the operator issue, ruma_tx and Synapse side by side (run by bench/operators.sh).

Scenarios (one after the other; ROUNDS repeats 1-3 and tables show medians):

  users_list    (OPS_PASSES passes per round, default 5) the admin user list: OPS_USERS users (made with the admin API,
                PUT /_synapse/admin/v2/users/@opuN:localhost with a password), paged
                through with GET /_synapse/admin/v2/users?from=..&limit=100, and
                OPS_SEARCHES (20) searches ?name=opu12 (and opu1, opu123, ...): time and server CPU
                per request (/proc/<pid>/stat utime+stime deltas; + PostgreSQL as aux)
  rooms_list    (OPS_PASSES passes) GET /_synapse/admin/v1/rooms?limit=100 paged through OPS_ROOMS rooms
  metrics       ruma_tx only: OPS_SENDERS senders PUT /rooms/{id}/send back to back
                for OPS_SEND_S seconds, with nobody scraping its "metrics" listener, then
                with GET /metrics every second; msgs/s and CPU per message, and their ratio
  import        Synapse only as the source: OPS_IMPORT_MSGS messages sent into the rooms
                above through its client API; Synapse stopped (the caller does that, see
                --stop-synapse-cmd); then `ruma-admin import-synapse ... --yes` into a fresh
                database: wall time, events/s, CPU seconds of the import process (and of
                PostgreSQL) per 1,000 events

Run with the repository's .venv python (aiohttp, psycopg2). Everything on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp

ADMIN = "/_synapse/admin"
CLIENT = "/_matrix/client/v3"
PASSWORD = "bench-password-1"
TICK = os.sysconf("SC_CLK_TCK")
now = time.perf_counter


def log(*a: Any) -> None:
    print(f"[operators {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return int(v) if v else default


def proc_cpu(pid: int, children: bool = False) -> float:
    """utime+stime (s) of C{pid}; with C{children}, plus those of its live child processes."""
    total = 0.0
    pids = [pid]
    if children:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            if children and p == pid:  # the postmaster's reaped children: ended backends
                total += (int(fields[13]) + int(fields[14])) / TICK
        except (OSError, IndexError):
            pass
    return total


class Side:
    def __init__(self, label: str, url: str, pid: int, aux: int | None) -> None:
        self.label, self.url, self.pid, self.aux = label, url, pid, aux
        self.session: aiohttp.ClientSession | None = None
        self.admin_token = ""
        self.tokens: list[str] = []     # OPS_SENDERS ordinary users, logged in
        self.rooms: list[str] = []

    def cpu(self) -> tuple[float, float]:
        return proc_cpu(self.pid), (proc_cpu(self.aux, children=True) if self.aux else 0.0)

    async def req(self, method: str, path: str, body: Any = None, token: str | None = None,
                  params: dict | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.url + path, json=body, headers=headers,
                                        params=params, timeout=aiohttp.ClientTimeout(total=300)) as r:
            text = await r.read()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text[:200]

    async def ok(self, method: str, path: str, body: Any = None, token: str | None = None,
                 params: dict | None = None) -> Any:
        status, js = await self.req(method, path, body, token, params)
        if not 200 <= status < 300:
            raise RuntimeError(f"{self.label}: {method} {path} answered {status} {js}")
        return js

    async def login(self, localpart: str) -> str:
        js = await self.ok("POST", CLIENT + "/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart},
            "password": PASSWORD})
        return js["access_token"]


async def gather_limited(coros: list, limit: int) -> list:
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def synapse_admin(side: Side, secret: str, localpart: str) -> None:
    """Synapse's first admin: its shared-secret registration (HMAC-SHA1 over nonce, user, password, admin)."""
    nonce = (await side.ok("GET", ADMIN + "/v1/register"))["nonce"]
    mac = hmac.new(secret.encode(), b"\x00".join([nonce.encode(), localpart.encode(), PASSWORD.encode(),
                                                   b"admin"]), hashlib.sha1).hexdigest()
    await side.ok("POST", ADMIN + "/v1/register", {"nonce": nonce, "username": localpart,
                                                   "password": PASSWORD, "admin": True, "mac": mac})


async def seed(side: Side, users: int, rooms: int, senders: int) -> dict:
    """OPS_USERS users through the admin API, then OPS_ROOMS rooms made by the first senders."""
    t0 = now()
    await gather_limited([side.ok("PUT", f"{ADMIN}/v2/users/@opu{i}:localhost",
                                  {"password": PASSWORD, "displayname": f"Operator user {i}"},
                                  token=side.admin_token) for i in range(users)], 8)
    t_users = now() - t0
    side.tokens = list(await asyncio.gather(*(side.login(f"opu{i}") for i in range(senders))))
    t1 = now()
    made = await gather_limited([side.ok("POST", CLIENT + "/createRoom", {"name": f"room {i}"},
                                         token=side.tokens[i % senders]) for i in range(rooms)], 8)
    side.rooms = [m["room_id"] for m in made]
    return {"users_s": round(t_users, 1), "users_per_s": round(users / t_users, 1),
            "rooms_s": round(now() - t1, 1)}


async def timed_requests(side: Side, paths: list[tuple[str, dict]], check) -> dict:
    """The requests one after the other: latency p50/max and CPU per request over the window."""
    lat = []
    c0, a0 = side.cpu()
    t0 = now()
    for path, params in paths:
        t = now()
        js = await side.ok("GET", path, token=side.admin_token, params=params)
        lat.append(now() - t)
        check(js)
    wall = now() - t0
    c1, a1 = side.cpu()
    n = len(lat)
    return {"requests": n, "wall_s": round(wall, 3), "latency_ms_p50": round(1000 * statistics.median(lat), 2),
            "latency_ms_max": round(1000 * max(lat), 2),
            "server_cpu_ms_per_req": round(1000 * (c1 - c0) / n, 2),
            "server_plus_pg_cpu_ms_per_req": round(1000 * (c1 - c0 + a1 - a0) / n, 2)}


async def users_list(side: Side, users: int, searches: int, passes: int) -> dict:
    pages = [(f"{ADMIN}/v2/users", {"from": str(f), "limit": "100"})
             for _ in range(passes) for f in range(0, users + 1, 100)]
    seen = []

    def page(js):
        seen.extend(u["name"] for u in js["users"])

    listing = await timed_requests(side, pages, page)
    if len(set(seen)) < users:
        raise RuntimeError(f"{side.label}: the user list showed {len(set(seen))} users, expected >= {users}")
    terms = ["opu12", "opu1", "opu123", "opu7", "opu19"]
    found: list[int] = []
    search = await timed_requests(
        side, [(f"{ADMIN}/v2/users", {"name": terms[i % len(terms)], "from": "0", "limit": "100"})
               for i in range(searches)], lambda js: found.append(int(js["total"])))
    search["totals"] = sorted(set(found))
    return {"list": listing, "search": search}


async def rooms_list(side: Side, rooms: int, passes: int) -> dict:
    pages = [(f"{ADMIN}/v1/rooms", {"from": str(f), "limit": "100"})
             for _ in range(passes) for f in range(0, rooms + 1, 100)]
    seen = []
    res = await timed_requests(side, pages, lambda js: seen.extend(r["room_id"] for r in js["rooms"]))
    if len(set(seen)) < rooms:
        raise RuntimeError(f"{side.label}: the room list showed {len(set(seen))} rooms, expected >= {rooms}")
    return res


async def send_window(side: Side, seconds: float, scrape_url: str | None) -> dict:
    """OPS_SENDERS senders, each into its own room, back to back; optional GET /metrics every second."""
    stop = now() + seconds
    sent = [0]
    scrapes = [0]

    async def sender(i: int) -> None:
        room, token = side.rooms[i], side.tokens[i]
        n = 0
        while now() < stop:
            n += 1
            await side.ok("PUT", f"{CLIENT}/rooms/{room}/send/m.room.message/m{time.time_ns()}-{i}-{n}",
                          {"msgtype": "m.text", "body": f"metrics bench {n}"}, token=token)
            sent[0] += 1

    async def scraper() -> None:
        while now() < stop:
            async with side.session.get(scrape_url) as r:
                body = await r.read()
                if r.status != 200 or b"# TYPE" not in body:
                    raise RuntimeError(f"/metrics answered {r.status}")
            scrapes[0] += 1
            await asyncio.sleep(1.0)

    c0, a0 = side.cpu()
    t0 = now()
    tasks = [sender(i) for i in range(len(side.tokens))] + ([scraper()] if scrape_url else [])
    await asyncio.gather(*tasks)
    wall = now() - t0
    c1, a1 = side.cpu()
    return {"msgs": sent[0], "scrapes": scrapes[0], "msgs_per_s": round(sent[0] / wall, 1),
            "server_cpu_ms_per_msg": round(1000 * (c1 - c0) / sent[0], 3),
            "server_plus_pg_cpu_ms_per_msg": round(1000 * (c1 - c0 + a1 - a0) / sent[0], 3)}


async def fill_for_import(side: Side, msgs: int) -> dict:
    t0 = now()
    await gather_limited([side.ok("PUT", f"{CLIENT}/rooms/{side.rooms[i % len(side.rooms)]}/send/m.room.message/imp{i}",
                                  {"msgtype": "m.text", "body": f"import traffic {i}"},
                                  token=side.tokens[(i % len(side.rooms)) % len(side.tokens)])
                          for i in range(msgs)], 16)
    wall = now() - t0
    return {"msgs": msgs, "s": round(wall, 1), "msgs_per_s": round(msgs / wall, 1)}


def run_import(args: argparse.Namespace) -> dict:
    import psycopg2  # only here: the .venv has it (ruma_tx's driver)

    with psycopg2.connect(args.synapse_dsn) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from events")
        events = cur.fetchone()[0]
        cur.execute("select count(*) from rooms")
        rooms = cur.fetchone()[0]
        cur.execute("select count(*) from users")
        users = cur.fetchone()[0]
    cmd = [args.ruma_admin, "import-synapse", "--config", args.import_config, "--synapse-db", args.synapse_dsn,
           "--signing-key", args.signing_key, "--media-store", args.media_store, "--yes"]
    log("import:", " ".join(cmd), f"({events} events, {rooms} rooms, {users} users)")
    a0 = proc_cpu(args.aux_pid, children=True) if args.aux_pid else 0.0
    t0 = now()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = now() - t0
    a1 = proc_cpu(args.aux_pid, children=True) if args.aux_pid else 0.0
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"import-synapse failed ({status}): {err[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"events": events, "rooms": rooms, "users": users, "wall_s": round(wall, 1),
            "events_per_s": round(events / wall, 1), "cpu_s": round(cpu, 1),
            "cpu_s_per_1000_events": round(1000 * cpu / events, 2),
            "pg_cpu_s_per_1000_events": round(1000 * (a1 - a0) / events, 2),
            "max_rss_mib": round(usage.ru_maxrss / 1024, 1), "tail": (out + err)[-600:]}


def med(runs: list[dict], path: str) -> float:
    vals = []
    for r in runs:
        v: Any = r
        for k in path.split("."):
            v = v[k]
        vals.append(v)
    return round(statistics.median(vals), 3)


def table(res: dict) -> str:
    a, b = res["sides"]
    lines = [f"| measure | {a} | {b} | {a}/{b} |", "|---|---|---|---|"]

    def row(name: str, scen: str, path: str) -> None:
        x = med(res[scen][a], path)
        y = med(res[scen][b], path)
        lines.append(f"| {name} | {x} | {y} | {round(x / y, 3) if y else '-'} |")

    for scen, label in (("users_list", "user list"),):
        for part, what in (("list", "page of 100"), ("search", "?name= search")):
            row(f"{label} {what}: latency p50 ms", scen, f"{part}.latency_ms_p50")
            row(f"{label} {what}: server CPU ms/req", scen, f"{part}.server_cpu_ms_per_req")
            row(f"{label} {what}: server+PG CPU ms/req", scen, f"{part}.server_plus_pg_cpu_ms_per_req")
    row("room list page of 100: latency p50 ms", "rooms_list", "latency_ms_p50")
    row("room list page of 100: server CPU ms/req", "rooms_list", "server_cpu_ms_per_req")
    row("room list page of 100: server+PG CPU ms/req", "rooms_list", "server_plus_pg_cpu_ms_per_req")
    out = "\n".join(lines)
    if res.get("metrics"):
        m = res["metrics"]
        lines = ["", f"| ruma_tx send, {res['params']['senders']} senders | no scraping | /metrics every 1 s | scraped/none |",
                 "|---|---|---|---|"]
        for name, key in (("msgs/s", "msgs_per_s"), ("server CPU ms/msg", "server_cpu_ms_per_msg"),
                          ("server+PG CPU ms/msg", "server_plus_pg_cpu_ms_per_msg")):
            x, y = med(m["none"], key), med(m["scraped"], key)
            lines.append(f"| {name} | {x} | {y} | {round(y / x, 3) if x else '-'} |")
        out += "\n".join(lines[1:]).join(["\n\n", ""])
    if res.get("import"):
        i = res["import"]
        out += (f"\n\nimport-synapse: {i['events']} events ({i['users']} users, {i['rooms']} rooms) in "
                f"{i['wall_s']} s = {i['events_per_s']} events/s; import process CPU {i['cpu_s']} s = "
                f"{i['cpu_s_per_1000_events']} s per 1,000 events (PostgreSQL {i['pg_cpu_s_per_1000_events']} s "
                f"per 1,000); max RSS {i['max_rss_mib']} MiB")
    return out


async def main_async(args: argparse.Namespace) -> dict:
    users, rooms = env_int("OPS_USERS", 2000), env_int("OPS_ROOMS", 500)
    senders, searches = env_int("OPS_SENDERS", 8), env_int("OPS_SEARCHES", 20)
    send_s, rounds = env_int("OPS_SEND_S", 15), env_int("ROUNDS", 1)
    passes = env_int("OPS_PASSES", 5)  # list passes per round: CPU ticks are 10 ms
    imp_msgs = env_int("OPS_IMPORT_MSGS", 5000)
    scenarios = (args.scenarios or "users_list rooms_list metrics import").split()
    a = Side("ruma_tx", args.a_url, args.a_pid, args.aux_pid)
    b = Side("synapse", args.b_url, args.b_pid, args.aux_pid)
    res: dict[str, Any] = {"sides": [a.label, b.label], "params": {
        "users": users, "rooms": rooms, "senders": senders, "searches": searches, "send_s": send_s,
        "rounds": rounds, "passes": passes, "import_msgs": imp_msgs}, "users_list": {a.label: [], b.label: []},
        "rooms_list": {a.label: [], b.label: []}, "metrics": {"none": [], "scraped": []}}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        a.session = b.session = session
        a.admin_token = await a.login("opadmin")
        await synapse_admin(b, args.synapse_secret, "opadmin")
        b.admin_token = await b.login("opadmin")
        for side in (a, b):
            log(f"{side.label}: seeding {users} users, {rooms} rooms")
            res.setdefault("seed", {})[side.label] = s = await seed(side, users, rooms, senders)
            log(f"{side.label}: seeded {s}")
        for rnd in range(rounds):
            for side in (a, b):
                if "users_list" in scenarios:
                    r = await users_list(side, users, searches, passes)
                    res["users_list"][side.label].append(r)
                    log(f"round {rnd + 1} {side.label} users_list", json.dumps(r))
                if "rooms_list" in scenarios:
                    r = await rooms_list(side, rooms, passes)
                    res["rooms_list"][side.label].append(r)
                    log(f"round {rnd + 1} {side.label} rooms_list", json.dumps(r))
            if "metrics" in scenarios:
                for mode, url in (("none", None), ("scraped", args.metrics_url)):
                    await asyncio.sleep(2)
                    r = await send_window(a, send_s, url)
                    res["metrics"][mode].append(r)
                    log(f"round {rnd + 1} ruma_tx send, metrics {mode}", json.dumps(r))
        if "import" in scenarios:
            log(f"synapse: {imp_msgs} messages for the import")
            res["import_fill"] = await fill_for_import(b, imp_msgs)
            log("synapse filled", res["import_fill"])
    if "import" in scenarios:
        subprocess.run(args.stop_synapse_cmd, shell=True, check=True, timeout=120)
        res["import"] = run_import(args)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a-url", required=True)
    p.add_argument("--a-pid", type=int, required=True)
    p.add_argument("--b-url", required=True)
    p.add_argument("--b-pid", type=int, required=True)
    p.add_argument("--aux-pid", type=int, help="the PostgreSQL postmaster both servers use")
    p.add_argument("--metrics-url", required=True, help="ruma_tx's /metrics")
    p.add_argument("--synapse-secret", required=True, help="Synapse's registration_shared_secret")
    p.add_argument("--synapse-dsn", required=True)
    p.add_argument("--signing-key", required=True)
    p.add_argument("--media-store", required=True)
    p.add_argument("--import-config", required=True, help="ruma.toml of the fresh import database")
    p.add_argument("--ruma-admin", required=True)
    p.add_argument("--stop-synapse-cmd", required=True)
    p.add_argument("--scenarios")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    res = asyncio.run(main_async(args))
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    md = table(res)
    with open(re.sub(r"\.json$", "", args.out) + ".md", "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
