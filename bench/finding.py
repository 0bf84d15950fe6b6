#!/usr/bin/env python3
"""finding.py - finding things: ruma_tx and Synapse side by side, in one run.

Scenarios (Client-Server API only, both servers, alternating scenario by scenario):

  directory      POST /user_directory/search over FIND_USERS users (display names
                 "First Last", each joined to one of FIND_ROOMS public rooms), by
                 searchers in one of those rooms: name prefixes, whole names, surnames
  search_element POST /search as Element Web sends it (order_by recent, 10 results,
                 event_context 1/1 with profiles) in a room of FIND_MSGS messages, terms
                 each in ~1-2 % of the messages
  search_rank    POST /search by rank, no context, same terms
  search_rare    POST /search by rank for words in ~0.05 % of the messages
  search_common  POST /search (recent) for the most common words (~60 % of the messages)

Each scenario: FIND_CONC clients back to back for FIND_DURATION_S seconds (closed loop):
requests/s, latency p50/p99, server CPU per request (and with PostgreSQL).

Seeding (users, names, joins, messages) is done once per server and kept in
$BENCH_HOME/finding/state-<label>.json; a later run checks it and goes on where it
stopped. Messages are seeded through the API only (PUT /send, FIND_SENDERS senders,
SEED_CONC requests in flight: Synapse stores concurrent events of one room in batches).
Message texts are drawn from a fixed Zipf-distributed vocabulary (the same on both
servers), so term frequencies are realistic and identical.

Depends on the shared kit (BENCH_KIT, default /work/shared/bench) for mxbench.py's HTTP
client, registration, percentiles and psutil monitor. Run it through bench/finding.sh.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import os
import random
import string
import sys
import time
from typing import Any, Awaitable, Callable

KIT = os.environ.get("BENCH_KIT", "/work/shared/bench")


def _load_kit():
    path = os.path.join(KIT, "mxbench.py")
    if not os.path.isfile(path):
        sys.exit(f"finding.py: the shared benchmark kit is missing: {path} not found (set BENCH_KIT).")
    spec = importlib.util.spec_from_file_location("mxbench", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mxbench"] = mod
    spec.loader.exec_module(mod)
    return mod


mx = _load_kit()
import aiohttp  # noqa: E402

CS = mx.CS
PASSWORD = "finding-Password-1"
now = time.perf_counter


def log(*a: Any) -> None:
    print(f"[finding {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return int(v) if v else default


SMOKE = os.environ.get("SMOKE") == "1"
USERS = env_int("FIND_USERS", 300 if SMOKE else 10_000)
ROOMS = env_int("FIND_ROOMS", 5 if SMOKE else 100)
MSGS = env_int("FIND_MSGS", 3_000 if SMOKE else 100_000)
#: Side B (Synapse) gets at most this many messages: it stores ~30-40 a second in one room
#: here, so 100,000 take it about an hour. A smaller room only makes its searches cheaper.
MSGS_MAX_B = env_int("FIND_MSGS_MAX_B", MSGS)
SENDERS = env_int("FIND_SENDERS", 16)
SEED_CONC = env_int("SEED_CONC", 32)
CONC = env_int("FIND_CONC", 8)
DURATION_S = env_int("FIND_DURATION_S", 5 if SMOKE else 20)

# ------------------------------------------------------------------- the texts
FIRST = ("james mary john patricia robert jennifer michael linda william elizabeth david barbara "
         "richard susan joseph jessica thomas sarah charles karen christopher nancy daniel lisa "
         "matthew betty anthony margaret mark sandra donald ashley steven kimberly paul emily "
         "andrew donna joshua michelle kenneth carol kevin amanda brian melissa george deborah").split()
LAST = ("smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez "
        "gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris "
        "sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill "
        "flores green adams nelson baker hall rivera campbell mitchell carter roberts").split()


def display_name(i: int) -> str:
    rnd = random.Random(i)
    return f"{rnd.choice(FIRST).title()} {rnd.choice(LAST).title()}"


def _vocabulary() -> list[str]:
    """5,000 pronounceable made-up words, the same on every run, most frequent first."""
    rnd = random.Random(7)
    cons, vow = "bcdfghjklmnprstvz", "aeiou"
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < 5000:
        w = "".join(rnd.choice(cons) + rnd.choice(vow) for _ in range(rnd.randint(2, 4))) + rnd.choice(cons)
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


VOCAB = _vocabulary()
CUM_WEIGHTS = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(VOCAB))))


def message_body(i: int) -> str:
    rnd = random.Random(1_000_003 * i + 11)
    return " ".join(rnd.choices(VOCAB, cum_weights=CUM_WEIGHTS, k=rnd.randint(5, 15)))


#: Search terms by how often they occur (Zipf ranks): fractions of messages holding them.
TERMS = {"mid": VOCAB[40:90], "rare": VOCAB[2000:2050], "common": VOCAB[0:3]}


def directory_terms() -> list[str]:
    rnd = random.Random(3)
    terms = []
    for _ in range(60):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        terms += [first[:rnd.randint(1, 3)], first[:4], f"{first} {last[:2]}", last, f"{first} {last}"]
    return terms


# ------------------------------------------------------------------- state
class State:
    """Seeded users and rooms of one server, kept between runs (JSON, written atomically)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.exists(path):
            with open(path) as f:
                self.d = json.load(f)
        else:
            self.d = {"seed_id": "".join(random.choices(string.ascii_lowercase, k=4)), "users": [],
                      "rooms": [], "joined": 0, "search_room": None, "sent": 0}

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + ".tmp", "w") as f:
            json.dump(self.d, f, separators=(",", ":"))
        os.replace(self.path + ".tmp", self.path)


class Side:
    def __init__(self, label: str, url: str, pid: int | None, aux: list[int], http: Any, state: State) -> None:
        self.label, self.url, self.pid, self.aux, self.http, self.state = label, url, pid, aux, http, state

    async def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        return await self.http.call(method, CS + path, token=token, body=body, timeout=120)


async def bounded(items: list, conc: int, fn: Callable[[Any], Awaitable[Any]]) -> list:
    sem = asyncio.Semaphore(conc)

    async def one(item: Any) -> Any:
        async with sem:
            return await fn(item)
    return await asyncio.gather(*(one(item) for item in items))


# ------------------------------------------------------------------- seeding
async def login(side: Side, localpart: str) -> dict:
    js = await side.call("POST", "/login", body={"type": "m.login.password", "password": PASSWORD,
                                                 "identifier": {"type": "m.id.user", "user": localpart}})
    return {"localpart": localpart, "user_id": js["user_id"], "token": js["access_token"]}


async def make_user(side: Side, i: int) -> dict:
    localpart = f"find{side.state.d['seed_id']}{i}"
    try:
        user = await mx.UIARegistrar().create(side.http, localpart, PASSWORD)
        d = {"localpart": localpart, "user_id": user.user_id, "token": user.token}
    except mx.HttpError as e:
        if not (isinstance(e.body, dict) and e.body.get("errcode") == "M_USER_IN_USE"):
            raise
        d = await login(side, localpart)
    await side.call("PUT", f"/profile/{mx.q(d['user_id'])}/displayname", d["token"],
                    {"displayname": display_name(i)})
    return d


async def seed(side: Side, msgs: int) -> None:
    st = side.state.d
    users: list[dict] = st["users"]
    if users:   # a kept state: the tokens must still work (else the database was reset)
        status, _, _ = await side.http.req("GET", CS + "/account/whoami", token=users[0]["token"])
        if status != 200:
            log(f"{side.label}: saved token refused ({status}); seeding again from scratch")
            side.state.d = st = State("/nonexistent").d
            users = st["users"]
    t0 = now()
    while len(users) < USERS:
        chunk = list(range(len(users), min(USERS, len(users) + 500)))
        users += await bounded(chunk, SEED_CONC, lambda i: make_user(side, i))
        side.state.save()
        log(f"{side.label}: {len(users)}/{USERS} users ({len(users) / (now() - t0):.1f}/s)")
    while len(st["rooms"]) < ROOMS:
        js = await side.call("POST", "/createRoom", users[0]["token"],
                             {"preset": "public_chat", "name": f"finding {len(st['rooms'])}"})
        st["rooms"].append(js["room_id"])
        side.state.save()
    t0, start = now(), st["joined"]
    while st["joined"] < USERS:
        chunk = list(range(st["joined"], min(USERS, st["joined"] + 500)))
        await bounded(chunk, SEED_CONC, lambda i: side.call(
            "POST", f"/join/{mx.q(st['rooms'][i % ROOMS])}", users[i]["token"], {}))
        st["joined"] = chunk[-1] + 1
        side.state.save()
        log(f"{side.label}: {st['joined']}/{USERS} joined ({(st['joined'] - start) / (now() - t0):.1f}/s)")
    senders = users[:SENDERS]
    if st["search_room"] is None:
        js = await side.call("POST", "/createRoom", senders[0]["token"], {"preset": "public_chat"})
        await bounded(senders[1:], SEED_CONC, lambda u: side.call("POST", f"/join/{mx.q(js['room_id'])}",
                                                                   u["token"], {}))
        st["search_room"] = js["room_id"]
        side.state.save()
    room = mx.q(st["search_room"])
    t0, start = now(), st["sent"]
    while st["sent"] < msgs:
        chunk = list(range(st["sent"], min(msgs, st["sent"] + 2000)))
        await bounded(chunk, SEED_CONC, lambda i: side.call(
            "PUT", f"/rooms/{room}/send/m.room.message/f{st['seed_id']}m{i}", senders[i % SENDERS]["token"],
            {"msgtype": "m.text", "body": message_body(i)}))
        st["sent"] = chunk[-1] + 1
        side.state.save()
        rate = (st["sent"] - start) / (now() - t0)
        log(f"{side.label}: {st['sent']}/{msgs} messages ({rate:.0f}/s)")


async def wait_indexed(side: Side, cap_s: float = 900) -> None:
    """Wait until the server's user directory finds the last seeded user (Synapse fills it
    in the background) and its search finds a rare word."""
    st = side.state.d
    last = st["users"][-1]
    searcher = st["users"][0]
    deadline = now() + cap_s
    while now() < deadline:
        js = await side.call("POST", "/user_directory/search", searcher["token"],
                             {"search_term": last["user_id"], "limit": 1})
        if [r["user_id"] for r in js["results"]] == [last["user_id"]]:
            return
        await asyncio.sleep(5)
    log(f"{side.label}: WARNING: the user directory still misses {last['user_id']} after {cap_s:.0f}s")


# ------------------------------------------------------------------- measuring
def scenario_requests(side: Side, name: str) -> tuple[str, list[tuple[str, dict]]]:
    """(path, [(token, body)...]) a scenario cycles through."""
    st = side.state.d
    if name == "directory":
        searchers = st["users"][:CONC * 4]
        terms = directory_terms()
        return "/user_directory/search", [(searchers[i % len(searchers)]["token"], {"search_term": t, "limit": 10})
                                          for i, t in enumerate(terms)]
    searchers = st["users"][:SENDERS]
    kind = {"search_element": "mid", "search_rank": "mid", "search_rare": "rare", "search_common": "common"}[name]
    bodies = []
    for i, term in enumerate(TERMS[kind]):
        criteria: dict[str, Any] = {"search_term": term, "filter": {"limit": 10}}
        if name == "search_element":
            criteria.update(order_by="recent",
                            event_context={"before_limit": 1, "after_limit": 1, "include_profile": True})
        elif name == "search_common":
            criteria["order_by"] = "recent"
        else:
            criteria["order_by"] = "rank"
        bodies.append((searchers[i % len(searchers)]["token"], {"search_categories": {"room_events": criteria}}))
    return "/search", bodies


def summarize(body: Any, path: str) -> tuple[int, int | None]:
    if path == "/search":
        events = body["search_categories"]["room_events"]
        return len(events.get("results", [])), events.get("count")
    return len(body.get("results", [])), None


async def measure(side: Side, name: str) -> dict[str, Any]:
    path, requests = scenario_requests(side, name)
    for token, body in requests[:3]:   # warm-up, and a check that it works
        await side.call("POST", path, token, body)
    lat: list[float] = []
    errors: dict[str, int] = {}
    shown, counts = [], []
    mon = mx.Monitor(side.pid, side.aux)
    s0 = mon.snapshot()
    mon.start()
    t_end = now() + DURATION_S

    async def worker(w: int) -> None:
        k = w
        while now() < t_end:
            token, body = requests[k % len(requests)]
            k += CONC
            t = now()
            try:
                status, js, _ = await side.http.req("POST", CS + path, token=token, body=body, timeout=120)
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                continue
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
                continue
            lat.append(now() - t)
            n, count = summarize(js, path)
            shown.append(n)
            if count is not None:
                counts.append(count)

    t0 = now()
    await asyncio.gather(*(worker(w) for w in range(CONC)))
    wall = now() - t0
    s1 = mon.snapshot()
    mon.stop()
    resources = mon.report(s0, s1)
    result: dict[str, Any] = {"requests": len(lat), "errors": errors, "requests_per_s": round(len(lat) / wall, 1),
                              "latency": mx.lat_summary(lat), "results_per_response": round(
                                  sum(shown) / len(shown), 2) if shown else None,
                              "resources": resources}
    if counts:
        result["mean_count"] = round(sum(counts) / len(counts), 1)
    if lat and "server_cpu_s" in resources:
        result["server_cpu_ms_per_op"] = round(1000 * resources["server_cpu_s"] / len(lat), 2)
        if "aux_cpu_s" in resources:
            result["server_plus_aux_cpu_ms_per_op"] = round(
                1000 * (resources["server_cpu_s"] + resources["aux_cpu_s"]) / len(lat), 2)
    return result


# ------------------------------------------------------------------- report
ROWS = (("requests/s", "requests_per_s", True), ("latency p50 ms", "latency.p50", False),
        ("latency p99 ms", "latency.p99", False), ("server CPU ms/op", "server_cpu_ms_per_op", False),
        ("server+aux CPU ms/op", "server_plus_aux_cpu_ms_per_op", False),
        ("results per response", "results_per_response", True), ("mean count", "mean_count", True),
        ("other load %", "resources.other_procs_cpu_pct", False))


def dig(d: dict, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


def markdown(results: dict[str, dict[str, dict]], labels: list[str]) -> str:
    a, b = labels
    lines = [f"| scenario | figure | {a} | {b} | {a}/{b} |", "|---|---|---|---|---|"]
    for scenario, by_side in results.items():
        for title, path, _ in ROWS:
            va, vb = dig(by_side.get(a, {}), path), dig(by_side.get(b, {}), path)
            if va is None and vb is None:
                continue
            ratio = f"{va / vb:.2f}" if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and vb else ""
            lines.append(f"| {scenario} | {title} | {va if va is not None else ''} | "
                         f"{vb if vb is not None else ''} | {ratio} |")
    return "\n".join(lines) + "\n"


async def amain(args: argparse.Namespace) -> None:
    home = os.environ.get("BENCH_HOME", os.path.expanduser("~/.cache/ruma-bench"))
    tag = "-smoke" if SMOKE else ""
    specs = [(args.a_label, args.a_url, args.a_pid, args.a_aux_pid), (args.b_label, args.b_url, args.b_pid,
                                                                       args.b_aux_pid)]
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        sides = [Side(label, url, pid, [aux] if aux else [], mx.Http(session, url),
                      State(os.path.join(home, "finding", f"state-{label}{tag}.json")))
                 for label, url, pid, aux in specs]
        msgs = [MSGS, min(MSGS, MSGS_MAX_B)]
        for side, side_msgs in zip(sides, msgs):
            log(f"{side.label}: seeding {USERS} users in {ROOMS} public rooms, {side_msgs} messages")
            await seed(side, side_msgs)
        for side in sides:
            await wait_indexed(side)
        if args.seed_only:
            return
        results: dict[str, dict[str, dict]] = {}
        for scenario in args.scenarios.split():
            results[scenario] = {}
            for side in sides:
                log(f"{side.label}: {scenario} ({CONC} clients, {DURATION_S}s)")
                results[scenario][side.label] = r = await measure(side, scenario)
                log(f"{side.label}: {scenario}: {r['requests_per_s']} req/s, p50 {r['latency'].get('p50')} ms,"
                    f" CPU {r.get('server_cpu_ms_per_op')} ms/op, errors {r['errors']}")
                await asyncio.sleep(2)
    out = {"params": {"users": USERS, "rooms": ROOMS, "messages": msgs, "concurrency": CONC,
                      "duration_s": DURATION_S, "code": os.environ.get("RUMA_CODE")},
           "results": results}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    table = markdown(results, [args.a_label, args.b_label])
    with open(args.out.rsplit(".", 1)[0] + ".md", "w") as f:
        f.write(table)
    print(table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a-url", required=True)
    p.add_argument("--a-label", default="ruma_tx")
    p.add_argument("--a-pid", type=int)
    p.add_argument("--a-aux-pid", type=int)
    p.add_argument("--b-url", required=True)
    p.add_argument("--b-label", default="synapse")
    p.add_argument("--b-pid", type=int)
    p.add_argument("--b-aux-pid", type=int)
    p.add_argument("--scenarios", default="directory search_element search_rank search_rare search_common")
    p.add_argument("--out", required=True)
    p.add_argument("--seed-only", action="store_true")
    args = p.parse_args()
    asyncio.run(asyncio.wait_for(amain(args), timeout=8 * 3600))


if __name__ == "__main__":
    main()
