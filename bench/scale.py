#!/usr/bin/env python3
"""scale.py - benchmarks "at scale": ruma_tx and Synapse side by side, in one run.

Scenarios (all through the Client-Server API, both servers in one alternating run):

  initial_sync  one account in IS_ROOMS rooms (IS_MSGS messages each): initial /sync,
                p50 time and CPU per sync (a fresh device per run)
  join          rooms of BIG_SIZES members (1k, 5k, 10k): time and CPU of one more join
                (JOIN_PROBE fresh users join one after another, then leave again)
  big_fanout    FAN_SYNCERS members of the largest room long-poll /sync while FAN_M
                messages are sent into it at FAN_RATE msg/s: delivery latency p50/p99
  big_saturated the same at SAT_RATE msg/s (SAT_M messages): deliveries/s
  messages      /messages back-pagination (limit 100) in rooms of MSG_SIZES events,
                from the newest event and from the middle of the room: page latency
                and CPU per page for each size
  fanout        the shared kit's mxbench `fanout` (compare.sh's defaults: 50 syncers,
                20 msgs at 1 msg/s), run as a subprocess

Seeding (users, rooms, members, messages) is done once per server and kept: the state
file $BENCH_HOME/scale/state-<label>.json records users, tokens and rooms, and later
runs re-measure the same rooms. It is resumable (progress is saved in chunks).

Depends at run time on the shared benchmark kit (BENCH_KIT, default /work/shared/bench):
mxbench.py (HTTP client, user registration, psutil CPU monitor, percentiles) is imported
from there by path. Run it through bench/scale.sh, which starts the servers.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import random
import signal
import statistics
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

KIT = os.environ.get("BENCH_KIT", "/work/shared/bench")


def _load_kit():
    path = os.path.join(KIT, "mxbench.py")
    if not os.path.isfile(path):
        sys.exit(f"scale.py: the shared benchmark kit is missing: {path} not found.\n"
                 f"  bench/ needs /work/shared/bench (mxbench.py, synapse.sh) at run time;\n"
                 f"  set BENCH_KIT to its location.")
    spec = importlib.util.spec_from_file_location("mxbench", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mxbench"] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


mx = _load_kit()
import aiohttp  # noqa: E402  (after the kit check, which gives the clearer error)

CS = mx.CS
q = mx.q
now = time.perf_counter
lat_summary = mx.lat_summary
PASSWORD = "scale-Password-1"


def log(*a: Any) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- sizes
def env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else default


def env_float(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else default


def env_ints(name: str, default: str) -> list[int]:
    return [int(x) for x in (os.environ.get(name) or default).replace(",", " ").split()]


FULL = dict(IS_ROOMS=1000, IS_MSGS=5, IS_RUNS=5,
            BIG_SIZES="1000 2000 5000 10000", BIG_MAX_B=2000, JOIN_PROBE=50,
            FAN_SYNCERS=1000, FAN_M=30, FAN_RATE=1.0,
            SAT_M=300, SAT_RATE=20.0, FAN_TIMELINE_LIMIT=100,
            MSG_SIZES="1000 100000 1000000", MSG_MAX_B=100000, MSG_PAGES=50,
            MSG_SENDERS=8, MF_USERS=50, MF_M=20, MF_RATE=1.0)
SMOKE = dict(IS_ROOMS=20, IS_MSGS=3, IS_RUNS=2,
             BIG_SIZES="40 80 120", BIG_MAX_B=80, JOIN_PROBE=5,
             FAN_SYNCERS=30, FAN_M=5, FAN_RATE=1.0,
             SAT_M=30, SAT_RATE=10.0, FAN_TIMELINE_LIMIT=100,
             MSG_SIZES="200 600 1500", MSG_MAX_B=600, MSG_PAGES=6,
             MSG_SENDERS=4, MF_USERS=10, MF_M=5, MF_RATE=1.0)


@dataclass
class Sizes:
    is_rooms: int
    is_msgs: int
    is_runs: int
    big_sizes: list[int]
    big_max_b: int
    fan_size: int
    join_probe: int
    fan_syncers: int
    fan_m: int
    fan_rate: float
    sat_m: int
    sat_rate: float
    fan_timeline_limit: int
    fan_presence: str
    msg_sizes: list[int]
    msg_max_b: int
    msg_pages: int
    msg_positions: list[str]
    msg_senders: int
    mf_users: int
    mf_m: int
    mf_rate: float
    seed_conc: int

    @classmethod
    def from_env(cls, smoke: bool) -> "Sizes":
        d = SMOKE if smoke else FULL
        return cls(
            is_rooms=env_int("IS_ROOMS", d["IS_ROOMS"]), is_msgs=env_int("IS_MSGS", d["IS_MSGS"]),
            is_runs=env_int("IS_RUNS", d["IS_RUNS"]),
            big_sizes=sorted(env_ints("BIG_SIZES", d["BIG_SIZES"])),
            big_max_b=env_int("BIG_MAX_B", d["BIG_MAX_B"]),
            fan_size=env_int("FAN_SIZE", 0),
            join_probe=env_int("JOIN_PROBE", d["JOIN_PROBE"]),
            fan_syncers=env_int("FAN_SYNCERS", d["FAN_SYNCERS"]),
            fan_m=env_int("FAN_M", d["FAN_M"]), fan_rate=env_float("FAN_RATE", d["FAN_RATE"]),
            sat_m=env_int("SAT_M", d["SAT_M"]), sat_rate=env_float("SAT_RATE", d["SAT_RATE"]),
            fan_timeline_limit=env_int("FAN_TIMELINE_LIMIT", d["FAN_TIMELINE_LIMIT"]),
            fan_presence=os.environ.get("FAN_PRESENCE") or "offline",
            msg_sizes=sorted(env_ints("MSG_SIZES", d["MSG_SIZES"])),
            msg_max_b=env_int("MSG_MAX_B", d["MSG_MAX_B"]),
            msg_pages=env_int("MSG_PAGES", d["MSG_PAGES"]),
            msg_positions=(os.environ.get("MSG_POSITIONS") or "top mid").split(),
            msg_senders=env_int("MSG_SENDERS", d["MSG_SENDERS"]),
            mf_users=env_int("MF_USERS", d["MF_USERS"]), mf_m=env_int("MF_M", d["MF_M"]),
            mf_rate=env_float("MF_RATE", d["MF_RATE"]),
            seed_conc=env_int("SEED_CONC", 16))


# ------------------------------------------------------------------------- state
class State:
    """Seeded users and rooms of one server, kept between runs (JSON, written atomically)."""

    def __init__(self, path: str, label: str, url: str) -> None:
        self.path = path
        if os.path.exists(path):
            with open(path) as f:
                self.d = json.load(f)
        else:
            self.d = {"version": 1, "label": label, "url": url,
                      "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      "seed_id": "".join(random.choices(string.ascii_lowercase, k=5)),
                      "items": {}}
        self.d["url"] = url

    @property
    def items(self) -> dict:
        return self.d["items"]

    @property
    def seed_id(self) -> str:
        return self.d["seed_id"]

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.d, f, separators=(",", ":"))
        os.replace(tmp, self.path)


def u2d(u) -> dict:
    return {"localpart": u.localpart, "user_id": u.user_id, "token": u.token,
            "device_id": u.device_id}


def d2u(d: dict):
    return mx.User(d["localpart"], PASSWORD, d["user_id"], d["token"], d.get("device_id"))


# ------------------------------------------------------------------------- sides
@dataclass
class Side:
    label: str
    url: str
    pid: int | None
    aux: list[int]
    http: Any = None
    state: State | None = None
    peer: "Side | None" = None
    server_header: str | None = None
    sem: asyncio.Semaphore | None = None
    notes: list[str] = field(default_factory=list)


#: py-spy profiling of the measured windows of one side (--profile-dir); on after seeding
PROFILE: dict[str, Any] = {}


class Window:
    """CPU accounting over a measured window: the server (+children), its aux PIDs (the
    PostgreSQL postmaster and its backends), the other server, the harness, the machine."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.mon = mx.Monitor(side.pid, side.aux)
        self.peer = mx.Monitor(side.peer.pid, []) if side.peer and side.peer.pid else None
        self.s0 = self.p0 = None
        self.prof = None

    def start(self) -> "Window":
        if PROFILE.get("on") and self.side.label == PROFILE.get("label") and self.side.pid:
            os.makedirs(PROFILE["dir"], exist_ok=True)
            self.prof = Profiler(PROFILE["py_spy"], self.side.pid, os.path.join(
                PROFILE["dir"], f"{PROFILE.get('step', 'step')}-{self.side.label}.txt"))
        self.s0 = self.mon.snapshot()
        self.p0 = self.peer.snapshot() if self.peer else None
        self.mon.start()
        return self

    def restart(self) -> None:
        self.s0 = self.mon.snapshot()
        self.p0 = self.peer.snapshot() if self.peer else None
        self.mon.samples.clear()

    def stop(self) -> dict:
        s1 = self.mon.snapshot()
        self.mon.stop()
        r = self.mon.report(self.s0, s1)
        r["server_rss_mib_after"] = self.mon.rss_mib()
        if self.peer and self.p0:
            pr = self.peer.report(self.p0, self.peer.snapshot())
            if "server_cpu_pct" in pr:
                r["peer_server_cpu_pct"] = pr["server_cpu_pct"]
        if self.prof:
            r["profile"] = self.prof.stop()
            self.prof = None
        return r


def per_op(res: dict, resources: dict, ops: int | None, unit: str) -> None:
    if ops and "server_cpu_s" in resources:
        res["server_cpu_ms_per_op"] = round(1000 * resources["server_cpu_s"] / ops, 3)
        if "aux_cpu_s" in resources:
            res["server_plus_aux_cpu_ms_per_op"] = round(
                1000 * (resources["server_cpu_s"] + resources["aux_cpu_s"]) / ops, 3)
        res["op_unit"] = unit


async def bounded(coros: list, conc: int, deadline: float, what: str) -> list:
    """Run coroutines with bounded concurrency before a deadline (perf_counter)."""
    sem = asyncio.Semaphore(max(1, conc))

    async def one(c):
        async with sem:
            if now() > deadline:
                c.close()
                raise TimeoutError(f"{what}: seeding cap reached")
            return await c
    tasks = [asyncio.ensure_future(one(c)) for c in coros]
    try:
        return await asyncio.wait_for(asyncio.gather(*tasks), timeout=max(1.0, deadline - now()))
    except asyncio.TimeoutError:
        raise TimeoutError(f"{what}: seeding cap reached")
    finally:
        for t in tasks:
            t.cancel()


# ------------------------------------------------------------------------- helpers
async def make_user(side: Side, localpart: str):
    """Register (UIA m.login.dummy); if the name is taken (a resumed seed), log in."""
    try:
        return await mx.UIARegistrar().create(side.http, localpart, PASSWORD)
    except mx.HttpError as e:
        body = e.body if isinstance(e.body, dict) else {}
        if body.get("errcode") != "M_USER_IN_USE":
            raise
    return await login(side, localpart)


async def login(side: Side, localpart: str):
    js = await side.http.call("POST", CS + "/login", body={
        "type": "m.login.password", "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": localpart},
        "initial_device_display_name": "scale"})
    return mx.User(localpart, PASSWORD, js["user_id"], js["access_token"], js.get("device_id"))


async def token_ok(side: Side, token: str) -> bool:
    st, js, _ = await side.http.req("GET", CS + "/account/whoami", token=token)
    return st == 200


async def refresh_users(side: Side, users: list[dict], deadline: float, conc: int) -> bool:
    """Log in again users whose tokens stopped working (e.g. a new secret key).
    False if they no longer exist (the database was reset)."""
    async def one(d):
        if await token_ok(side, d["token"]):
            return True
        try:
            u = await login(side, d["localpart"])
        except mx.HttpError:
            return False
        d.update(u2d(u))
        return True
    res = await bounded([one(d) for d in users], conc, deadline, "token refresh")
    return all(res)


async def as_user(side: Side, d: dict, fn):
    """fn(token) for the pool user d; on M_UNKNOWN_TOKEN (e.g. the server's token format
    changed since the token was saved) log in again once, save the new token, retry."""
    try:
        return await fn(d["token"])
    except mx.HttpError as e:
        if e.status != 401:
            raise
    d.update(u2d(await login(side, d["localpart"])))
    return await fn(d["token"])


async def room_ok(side: Side, token: str, room_id: str) -> bool:
    st, _, _ = await side.http.req("GET", f"{CS}/rooms/{q(room_id)}/state/m.room.create",
                                   token=token)
    return st == 200


async def create_room(side: Side, u, name: str) -> str:
    js = await side.http.call("POST", CS + "/createRoom", token=u.token, timeout=120,
                              body={"preset": "public_chat", "name": name,
                                    "visibility": "private"})
    return js["room_id"]


async def send(side: Side, u, room: str, txn: str, content: dict, timeout: float = 120):
    return await side.http.req("PUT", f"{CS}/rooms/{q(room)}/send/m.room.message/{q(txn)}",
                               token=u.token, body=content, timeout=timeout)


async def send_call(side: Side, u, room: str, txn: str, content: dict) -> str:
    js = await side.http.call("PUT", f"{CS}/rooms/{q(room)}/send/m.room.message/{q(txn)}",
                              token=u.token, body=content, timeout=120)
    return js["event_id"]


async def register_pool(side: Side, item: dict, n: int, prefix: str, deadline: float,
                        conc: int, chunk: int = 500) -> list:
    """item["users"] grows to n users (resumable in chunks)."""
    users = item.setdefault("users", [])
    t0, start = now(), len(users)
    while len(users) < n:
        lo, hi = len(users), min(n, len(users) + chunk)
        got = await bounded([make_user(side, f"{prefix}{i}") for i in range(lo, hi)],
                            conc, deadline, f"{side.label} register")
        users.extend(u2d(u) for u in got)
        side.state.save()
        log(f"{side.label}: {len(users)}/{n} users ({(len(users) - start) / (now() - t0):.0f}/s)")
    return users


# ------------------------------------------------------------------------- seeding
async def seed_initial_sync(side: Side, sz: Sizes, deadline: float) -> dict:
    key = f"isync:{sz.is_rooms}x{sz.is_msgs}"
    st = side.state
    item = st.items.get(key)
    if item and item.get("done"):
        ok = await refresh_users(side, [item["user"]], deadline, 1)
        if ok and await room_ok(side, item["user"]["token"], item["rooms"][-1]):
            st.save()
            return item
        log(f"{side.label}: {key} is stale (server data reset?); seeding again")
        item = None
    if item is None:
        item = st.items[key] = {"rooms": [], "msgs_done": 0}
        u = await make_user(side, f"sc{st.seed_id}is{sz.is_rooms}x{sz.is_msgs}")
        item["user"] = u2d(u)
        st.save()
    else:
        await refresh_users(side, [item["user"]], deadline, 1)
    u = d2u(item["user"])
    t0 = now()
    while len(item["rooms"]) < sz.is_rooms:
        lo, hi = len(item["rooms"]), min(sz.is_rooms, len(item["rooms"]) + 100)
        rooms = await bounded([create_room(side, u, f"scale isync {i}") for i in range(lo, hi)],
                              min(8, sz.seed_conc), deadline, f"{side.label} createRoom")
        item["rooms"].extend(rooms)
        st.save()
        log(f"{side.label}: {len(item['rooms'])}/{sz.is_rooms} rooms "
            f"({(hi) / (now() - t0):.1f}/s)")
    # messages: round j sends message j into every room (resumable per round)
    while item["msgs_done"] < sz.is_msgs:
        j = item["msgs_done"]
        await bounded([send_call(side, u, r, f"is{j}", {"msgtype": "m.text",
                                                       "body": f"seed message {j} " + "x" * 40})
                       for r in item["rooms"]], sz.seed_conc, deadline, f"{side.label} isync msgs")
        item["msgs_done"] = j + 1
        st.save()
        log(f"{side.label}: isync message round {j + 1}/{sz.is_msgs}")
    item["done"] = True
    item["seed_s"] = round(item.get("seed_s", 0) + now() - t0, 1)
    st.save()
    return item


async def seed_big(side: Side, sizes: list[int], sz: Sizes, deadline: float) -> dict:
    """A pool of N = max(sizes) users ("bigusers"), and for each size S a room
    ("bigroom:S") that users 0..S-1 joined, smallest room first (each kept and reused on its
    own, so changing BIG_SIZES reuses the rooms already built). The growth of each room is
    recorded while it fills, per bucket of joins (CPU per join)."""
    n = max(sizes)
    st = side.state
    pool = st.items.setdefault("bigusers", {"users": []})
    if pool["users"]:
        first = pool["users"][0]
        if not await refresh_users(side, [first], deadline, 1):
            log(f"{side.label}: big-room users are stale (server data reset?); seeding again")
            pool["users"] = []
            for k in [k for k in st.items if k.startswith("bigroom:")]:
                del st.items[k]
    await register_pool(side, pool, n, f"sc{st.seed_id}b", deadline, sz.seed_conc)
    users = [d2u(d) for d in pool["users"]]
    out = {"users": pool["users"], "rooms": {}, "growth": {}}
    for size in sorted(sizes):
        key = f"bigroom:{size}"
        r = st.items.get(key)
        if r and not await room_ok(side, users[0].token, r["room_id"]):
            log(f"{side.label}: {key} is stale; seeding again")
            r = None
        if r is None:
            room = await create_room(side, users[0], f"scale big {size}")
            r = st.items[key] = {"room_id": room, "joined": 1, "growth": []}
            st.save()
        chunk = max(10, min(500, size // 20))
        t_all, start = now(), r["joined"]
        while r["joined"] < size:
            lo, hi = r["joined"], min(size, r["joined"] + chunk)
            w = Window(side).start()
            t0 = now()
            lats: list[float] = []

            async def join(d, room=r["room_id"], lats=lats):
                t = now()
                await as_user(side, d, lambda tok: side.http.call(
                    "POST", f"{CS}/join/{q(room)}", token=tok, body={}, timeout=300))
                lats.append(now() - t)
            await bounded([join(pool["users"][i]) for i in range(lo, hi)], sz.seed_conc,
                          deadline, f"{side.label} join {size}")
            res = w.stop()
            dt = now() - t0
            rec = {"members_before": lo, "members_after": hi,
                   "joins_per_s": round((hi - lo) / dt, 1),
                   "latency_ms_p50": lat_summary(lats)["p50"]}
            per_op(rec, res, hi - lo, "join")
            rec["other_load_pct"] = res.get("other_procs_cpu_pct")
            r["growth"].append(rec)
            r["joined"] = hi
            st.save()
            rate = (hi - start) / max(1e-9, now() - t_all)
            log(f"{side.label}: room {size}: {hi}/{size} members, {rec['joins_per_s']} joins/s, "
                f"{rec.get('server_cpu_ms_per_op')} ms CPU/join "
                f"({rate:.1f}/s overall, ~{(size - hi) / max(1e-9, rate) / 60:.0f} min left)")
        out["rooms"][str(size)] = r
        out["growth"][str(size)] = r["growth"]
    if await refresh_users(side, [pool["users"][0]] + fan_users(out, sz), deadline, sz.seed_conc):
        st.save()
    return out


def fan_room_size(item: dict, sz: Sizes) -> int:
    """The room the fan-out runs in: FAN_SIZE members if the side has that room (so both sides
    can be measured in rooms of one size), else the side's largest."""
    if str(sz.fan_size) in item["rooms"]:
        return sz.fan_size
    return max(int(size) for size in item["rooms"])


def fan_users(item: dict, sz: Sizes) -> list[dict]:
    """Syncers: the last FAN_SYNCERS members of the fan-out's room (members of it alone
    when the sizes allow)."""
    n = fan_room_size(item, sz)
    k = min(sz.fan_syncers, n - 1)
    return item["users"][n - k:n]


async def seed_messages_room(side: Side, sz: Sizes, size: int, deadline: float) -> dict:
    key = f"msgs:{size}"
    st = side.state
    item = st.items.get(key)
    if item and item.get("done"):
        ok = await refresh_users(side, item["users"][:1], deadline, 1)
        if ok and await room_ok(side, item["users"][0]["token"], item["room_id"]):
            st.save()
            return item
        log(f"{side.label}: {key} is stale (server data reset?); seeding again")
        item = None
    if item is None:
        item = st.items[key] = {"users": [], "sent": 0, "marks": {}}
        st.save()
    if item["users"]:
        await refresh_users(side, item["users"], deadline, 4)
    await register_pool(side, item, sz.msg_senders, f"sc{st.seed_id}m{size}_", deadline,
                        sz.seed_conc)
    users = [d2u(d) for d in item["users"]]
    if "room_id" not in item:
        item["room_id"] = await create_room(side, users[0], f"scale messages {size}")
        st.save()
        await bounded([side.http.call("POST", f"{CS}/join/{q(item['room_id'])}", token=u.token,
                                      body={}) for u in users[1:]], 4, deadline, "join senders")
    room = item["room_id"]
    marks_at = {str(size // 2): "mid"}
    t0, start = now(), item["sent"]
    chunk = 2000
    last_log = now()
    while item["sent"] < size:
        lo, hi = item["sent"], min(size, item["sent"] + chunk)

        async def one(i):
            d = item["users"][i % len(users)]
            ev = await as_user(side, d, lambda tok: send_call(
                side, mx.User(d["localpart"], PASSWORD, d["user_id"], tok), room, f"m{i}",
                {"msgtype": "m.text", "body": f"seed message {i} " + "x" * 40}))
            if str(i) in marks_at:
                item["marks"][marks_at[str(i)]] = ev
        await bounded([one(i) for i in range(lo, hi)], sz.seed_conc, deadline,
                      f"{side.label} messages {size}")
        item["sent"] = hi
        st.save()
        if now() - last_log > 20 or hi == size:
            last_log = now()
            rate = (hi - start) / max(1e-9, now() - t0)
            eta = (size - hi) / max(1e-9, rate)
            log(f"{side.label}: room of {size}: {hi} sent ({rate:.0f}/s, ~{eta / 60:.0f} min left)")
    item["done"] = True
    item["seed_s"] = round(item.get("seed_s", 0) + now() - t0, 1)
    item["seed_msgs_per_s"] = round((size - start) / max(1e-9, now() - t0), 1)
    st.save()
    return item


def big_sizes_for(side_index: int, sz: Sizes) -> list[int]:
    """Side A (ruma_tx) gets every size; side B (Synapse) only sizes <= BIG_MAX_B: its joins
    slow to ~1-2/s past 1,000 members here, so a 10,000-member room would take hours."""
    return sz.big_sizes if side_index == 0 else [s for s in sz.big_sizes if s <= sz.big_max_b]


def msg_sizes_for(side_index: int, sz: Sizes) -> list[int]:
    """Side A (ruma_tx) gets every size; side B (Synapse) only sizes <= MSG_MAX_B."""
    return sz.msg_sizes if side_index == 0 else [s for s in sz.msg_sizes if s <= sz.msg_max_b]


async def seed_side(side: Side, idx: int, sz: Sizes, scenarios: list[str], cap_s: float) -> dict:
    deadline = now() + cap_s
    out: dict[str, Any] = {}
    t0 = now()
    if "initial_sync" in scenarios:
        out["initial_sync"] = await seed_initial_sync(side, sz, deadline)
    if {"join", "big_fanout", "big_saturated"} & set(scenarios):
        out["big"] = await seed_big(side, big_sizes_for(idx, sz), sz, deadline)
    if "messages" in scenarios:
        out["messages"] = {}
        for size in msg_sizes_for(idx, sz):
            out["messages"][size] = await seed_messages_room(side, sz, size, deadline)
    log(f"{side.label}: seeding checked/done in {now() - t0:.0f}s")
    return out


# ------------------------------------------------------------------------- measured
def record(side: Side, scenario: str, variant: str, params: dict, result: dict,
           resources: dict, status: str = "ok", rnd: int = 1) -> dict:
    return {"scenario": scenario, "variant": variant, "label": side.label, "round": rnd,
            "status": status, "params": params, "result": result, "resources": resources,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


async def m_initial_sync(side: Side, sz: Sizes, item: dict, cap_s: float) -> dict:
    u = d2u(item["user"])
    tokens = []
    for _ in range(sz.is_runs):  # a fresh device per run: Synapse caches identical /syncs
        tokens.append((await login(side, u.localpart)).token)
    await asyncio.sleep(1.0)
    times, sizes, rooms, errors = [], [], [], {}
    t_end = now() + cap_s
    w = Window(side).start()
    for i, tok in enumerate(tokens):
        if now() > t_end:
            break
        t0 = now()
        try:
            s, js, nbytes = await side.http.req("GET", CS + "/sync", token=tok,
                                                timeout=max(10.0, t_end - now()))
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            continue
        dt = now() - t0
        if s != 200:
            errors[f"HTTP {s}"] = errors.get(f"HTTP {s}", 0) + 1
            continue
        times.append(dt)
        sizes.append(nbytes)
        rooms.append(len(((js or {}).get("rooms") or {}).get("join", {})))
        log(f"{side.label}: initial sync {i + 1}: {dt * 1000:.0f} ms, {nbytes} bytes, {rooms[-1]} rooms")
    res_r = w.stop()
    for tok in tokens:  # keep the account's device count stable between runs
        await side.http.req("POST", CS + "/logout", token=tok, body={})
    res = {"runs_ms": [round(t * 1000, 1) for t in times], "latency_ms": lat_summary(times),
           "response_bytes": sizes[-1] if sizes else None,
           "joined_rooms_in_response": rooms[-1] if rooms else None, "errors": errors}
    per_op(res, res_r, len(times), "sync")
    status = "ok" if len(times) == len(tokens) and not errors else "partial"
    return record(side, "initial_sync", f"{sz.is_rooms} rooms x {sz.is_msgs} msgs",
                  {"rooms": sz.is_rooms, "messages_per_room": sz.is_msgs, "runs": sz.is_runs,
                   "filter": "none", "fresh_device_per_run": True}, res, res_r, status)


async def m_join(side: Side, sz: Sizes, item: dict, size: int, runid: str, cap_s: float) -> dict:
    """JOIN_PROBE fresh users join the room of `size` members one after another (measured),
    then leave again (not measured), so the room keeps its size for the next run."""
    room = item["rooms"][str(size)]["room_id"]
    deadline = now() + 600
    probes = await bounded([make_user(side, f"sc{side.state.seed_id}p{runid}s{size}_{i}")
                            for i in range(sz.join_probe)], 8, deadline, "probe users")
    await asyncio.sleep(1.0)
    lats, errors = [], {}
    t_end = now() + cap_s
    w = Window(side).start()
    for u in probes:
        if now() > t_end:
            break
        t0 = now()
        s, js, _ = await side.http.req("POST", f"{CS}/join/{q(room)}", token=u.token, body={},
                                       timeout=120)
        if s == 200:
            lats.append(now() - t0)
        else:
            errors[f"HTTP {s}"] = errors.get(f"HTTP {s}", 0) + 1
    res_r = w.stop()
    await bounded([side.http.call("POST", f"{CS}/rooms/{q(room)}/leave", token=u.token, body={},
                                  timeout=120) for u in probes], 4, now() + 600, "probe leave")
    res = {"joins": len(lats), "latency_ms": lat_summary(lats), "errors": errors}
    per_op(res, res_r, len(lats), "join")
    return record(side, "join", f"room of {size} members",
                  {"members": size, "probe_joins": sz.join_probe, "sequential": True},
                  res, res_r, "ok" if not errors else "partial")


async def m_fanout(side: Side, sz: Sizes, item: dict, m: int, rate: float, scenario: str,
                   runid: str) -> dict:
    """FAN_SYNCERS members of the largest room long-poll /sync; a member sends m messages
    at `rate` msg/s (open loop). Delivery latency = arrival of the sync response carrying
    a message - start of its PUT, per (message, syncer)."""
    size = fan_room_size(item, sz)
    room = item["rooms"][str(size)]["room_id"]
    sender = d2u(item["users"][0])
    syncers = [d2u(d) for d in fan_users(item, sz)]
    n = len(syncers)
    presence = sz.fan_presence
    since_filter = json.dumps({"room": {"rooms": [], "account_data": {"types": []}},
                               "presence": {"types": []}, "account_data": {"types": []}},
                              separators=(",", ":"))
    poll_filter = json.dumps({"room": {"timeline": {"limit": sz.fan_timeline_limit},
                                       "state": {"lazy_load_members": True}}},
                             separators=(",", ":"))
    setup_deadline = now() + 900

    async def first_sync(u) -> str:
        js = await side.http.call("GET", CS + "/sync", token=u.token, timeout=300,
                                  params={"filter": since_filter, "timeout": "0",
                                          "set_presence": presence})
        return js["next_batch"]
    t0 = now()
    sinces = await bounded([first_sync(u) for u in syncers], 16, setup_deadline, "since tokens")
    log(f"{side.label}: {n} since tokens in {now() - t0:.1f}s")
    grace = max(60.0, 2.0 * m / rate)
    cap_s = m / rate + grace + 60.0
    send_start: dict[int, float] = {}
    send_lat: list[float] = []
    send_err: dict[str, int] = {}
    deliveries: list[tuple[int, int, float]] = []
    counters = {"sync_responses": 0, "limited": 0, "events": 0, "sync_errors": 0}
    parked = [False] * n
    all_sent = asyncio.Event()
    stop_all = asyncio.Event()
    hard_end = [now() + cap_s + 300]  # reset when sending starts

    async def syncer(k, u, since):
        seen: set[int] = set()
        grace_end = None
        h = side.http
        while len(seen) < m and not stop_all.is_set() and now() < hard_end[0]:
            if all_sent.is_set():
                grace_end = grace_end or now() + grace
                if now() > grace_end:
                    break
            parked[k] = True
            try:
                st, js, _ = await h.req("GET", CS + "/sync", token=u.token, timeout=60.0,
                                        params={"since": since, "timeout": "30000",
                                                "filter": poll_filter,
                                                "set_presence": presence})
            except (aiohttp.ClientError, asyncio.TimeoutError):
                counters["sync_errors"] += 1
                await asyncio.sleep(0.2)
                continue
            t_recv = now()
            if st != 200 or not isinstance(js, dict):
                counters["sync_errors"] += 1
                await asyncio.sleep(0.2)
                continue
            counters["sync_responses"] += 1
            since = js.get("next_batch", since)
            for rm in ((js.get("rooms") or {}).get("join") or {}).values():
                tl = rm.get("timeline") or {}
                if tl.get("limited"):
                    counters["limited"] += 1
                for ev in tl.get("events") or []:
                    counters["events"] += 1
                    c = ev.get("content") or {}
                    if c.get("scale_run") == runid:
                        seq = c.get("scale_seq")
                        if isinstance(seq, int) and seq not in seen:
                            seen.add(seq)
                            deliveries.append((k, seq, t_recv))

    async def one_send(i):
        send_start[i] = now()
        try:
            st, _, _ = await send(side, sender, room, f"{runid}-{scenario}-{i}",
                                  {"msgtype": "m.text", "body": f"scale fan-out {i} " + "y" * 40,
                                   "scale_run": runid, "scale_seq": i})
            if st == 200:
                send_lat.append(now() - send_start[i])
            else:
                send_err[f"HTTP {st}"] = send_err.get(f"HTTP {st}", 0) + 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            send_err[type(e).__name__] = send_err.get(type(e).__name__, 0) + 1

    w = Window(side)
    quiet: dict[str, Any] = {}

    async def sender_loop():
        t_wait = now()
        while not all(parked) and now() - t_wait < 120:
            await asyncio.sleep(0.05)
        # settle: every long-poll has reached the server and the server has gone quiet
        await asyncio.sleep(3.0)
        quiet.update(await wait_quiet(side, 60.0))
        w.start()
        hard_end[0] = now() + cap_s
        await open_loop(m, rate, one_send)
        all_sent.set()

    t_run = now()
    sync_tasks = [asyncio.ensure_future(syncer(k, u, s_)) for k, (u, s_) in
                  enumerate(zip(syncers, sinces))]
    await sender_loop()
    done, pending = await asyncio.wait(sync_tasks, timeout=grace + 70)
    stop_all.set()
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    res_r = w.stop()
    lat = [t - send_start[seq] for _, seq, t in deliveries if seq in send_start]
    expected = len(send_start) * n
    t_first = min(send_start.values()) if send_start else 0.0
    t_last = max((t for _, _, t in deliveries), default=t_first)
    span = max(1e-9, t_last - t_first)
    res = {"deliveries": len(deliveries), "deliveries_expected": expected,
           "deliveries_missing": expected - len(deliveries),
           "delivery_latency_ms": lat_summary(lat),
           "deliveries_per_s": round(len(deliveries) / span, 1),
           "offered_deliveries_per_s": round(n * rate, 1),
           "delivery_span_s": round(span, 2),
           "send_latency_ms": lat_summary(send_lat), "send_errors": send_err,
           "messages_sent_ok": len(send_lat),
           "sync_responses": counters["sync_responses"],
           "sync_responses_per_s": round(counters["sync_responses"] / span, 1),
           "events_per_sync_response": round(counters["events"] / max(1, counters["sync_responses"]), 2),
           "limited_timelines": counters["limited"], "sync_errors": counters["sync_errors"],
           "syncers_unfinished": len(pending), "settle": quiet,
           "elapsed_s": round(now() - t_run, 1)}
    per_op(res, res_r, len(deliveries), "delivery")
    status = "ok" if res["deliveries_missing"] == 0 and not send_err else "incomplete"
    return record(side, scenario, f"{n} syncers in a room of {size}, {m} msgs @ {rate:g}/s",
                  {"syncers": n, "room_members": size, "messages": m, "rate_per_s": rate,
                   "timeline_limit": sz.fan_timeline_limit, "set_presence": presence,
                   "lazy_load_members": True, "sync_timeout_ms": 30000}, res, res_r, status)


async def open_loop(m: int, rate: float, one) -> None:
    """Start one(i) for i in range(m) at `rate` a second whatever the answers (open loop)."""
    t0, tasks = now(), []
    for i in range(m):
        delay = t0 + i / rate - now()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i)))
    await asyncio.gather(*tasks)


async def wait_quiet(side: Side, limit_s: float, threshold_pct: float = 15.0) -> dict:
    """Wait (at most limit_s) until the server's CPU over one second is under threshold."""
    if not side.pid or mx.psutil is None:
        return {}
    t0 = now()
    mon = mx.Monitor(side.pid, [])
    last = None
    while now() - t0 < limit_s:
        s0 = mon.snapshot()
        await asyncio.sleep(1.0)
        r = mon.report(s0, mon.snapshot())
        last = r.get("server_cpu_pct")
        if last is not None and last < threshold_pct:
            break
    return {"waited_s": round(now() - t0, 1), "server_cpu_pct_last_s": last}


async def m_messages(side: Side, sz: Sizes, item: dict, size: int, position: str,
                     cap_s: float) -> dict:
    """MSG_PAGES pages of GET /messages?dir=b&limit=100 from `position` (top: the newest
    event; mid: the middle of the room, token from /context), starting again from the
    position when history runs out. Pages with an empty chunk are not counted."""
    u = d2u(item["users"][0])
    room = item["room_id"]
    start_token = None
    if position == "mid":
        ev = item["marks"].get("mid")
        if not ev:
            return record(side, "messages", f"{size} events, from the {position}", {},
                          {"error": "no mid mark"}, {}, "error")
        js = await side.http.call("GET", f"{CS}/rooms/{q(room)}/context/{q(ev)}", token=u.token,
                                  params={"limit": "1"})
        start_token = js.get("start")
    pages_lat: list[float] = []
    events = 0
    errors: dict[str, int] = {}
    passes = 0
    t_end = now() + cap_s
    w = Window(side).start()
    while len(pages_lat) < sz.msg_pages and now() < t_end and passes < 1000:
        passes += 1
        token = start_token
        got_any = False
        while len(pages_lat) < sz.msg_pages and now() < t_end:
            params = {"dir": "b", "limit": "100"}
            if token:
                params["from"] = token
            t0 = now()
            try:
                s, js, _ = await side.http.req("GET", f"{CS}/rooms/{q(room)}/messages",
                                               token=u.token, params=params, timeout=120)
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                break
            dt = now() - t0
            if s != 200:
                errors[f"HTTP {s}"] = errors.get(f"HTTP {s}", 0) + 1
                break
            chunk = js.get("chunk") or []
            if chunk:
                got_any = True
                pages_lat.append(dt)
                events += len(chunk)
            token = js.get("end")
            if not chunk or not token:
                break
        if not got_any:
            break
    res_r = w.stop()
    res = {"pages": len(pages_lat), "events": events, "passes": passes,
           "events_per_page": round(events / max(1, len(pages_lat)), 1),
           "page_latency_ms": lat_summary(pages_lat),
           "pages_per_s": round(len(pages_lat) / max(1e-9, sum(pages_lat)), 1),
           "errors": errors}
    per_op(res, res_r, len(pages_lat), "page")
    return record(side, "messages", f"{size} events, from the {position}",
                  {"room_events": size, "position": position, "page_limit": 100,
                   "pages": sz.msg_pages}, res, res_r,
                  "ok" if len(pages_lat) >= sz.msg_pages and not errors else "partial")


def m_mxbench_fanout(side: Side, sz: Sizes, tmpdir: str, python: str) -> dict:
    """compare.sh's `fanout` scenario: the kit's mxbench as a subprocess."""
    out = os.path.join(tmpdir, f"mxbench-fanout-{side.label}-{os.getpid()}.json")
    cmd = [python, os.path.join(KIT, "mxbench.py"), "--base-url", side.url, "--label", side.label,
           "--scenario", "fanout", "--users", str(sz.mf_users), "--rooms", "1",
           "--messages", str(sz.mf_m), "--rate", str(sz.mf_rate), "--json", out]
    if side.pid:
        cmd += ["--pid", str(side.pid)]
    for p in side.aux:
        cmd += ["--aux-pid", str(p)]
    log(f"{side.label}: mxbench fanout ({sz.mf_users} syncers, {sz.mf_m} msgs @ {sz.mf_rate:g}/s)")
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return record(side, "fanout", "", {}, {"error": "mxbench timed out"}, {}, "error")
    try:
        with open(out) as f:
            r = json.load(f)
        os.unlink(out)
    except (OSError, ValueError):
        return record(side, "fanout", "", {}, {"error": (cp.stderr or "")[-500:]}, {}, "error")
    p = r["result"].get("params", {})
    variant = f"mxbench fanout: {p.get('syncers')} syncers, 1 room, {p.get('messages')} msgs @ {p.get('rate_per_s') or 0:g}/s"
    rec = record(side, "fanout", variant, p, r["result"], r["resources"], r["status"])
    rec["mxbench_runid"] = r.get("runid")
    return rec


# ------------------------------------------------------------------------- profiling
class Profiler:
    """Optional (--profile-dir): py-spy record attached to a server for one measured step
    (--nonblocking: the server is never paused). Its raw stacks are kept; the record gets the
    top self and inclusive frames."""

    def __init__(self, py_spy: str, pid: int, path: str) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            [py_spy, "record", "--pid", str(pid), "--nonblocking", "--rate", "100",
             "--format", "raw", "-o", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)  # blocks the loop ~1 s, after the measured window
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return {"error": "py-spy did not stop"}
        return summarize_stacks(self.path)


def summarize_stacks(path: str, top: int = 25) -> dict:
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    try:
        with open(path) as f:
            for line in f:
                stack, _, n_text = line.rstrip("\n").rpartition(" ")
                if not n_text.isdigit():
                    continue
                n = int(n_text)
                total += n
                frames = stack.split(";")
                self_c[frames[-1]] = self_c.get(frames[-1], 0) + n
                for fr in set(frames):
                    incl[fr] = incl.get(fr, 0) + n
    except OSError as e:
        return {"error": str(e)}

    def top_of(d, pred=lambda k: True):
        items = sorted(((v, k) for k, v in d.items() if pred(k)), reverse=True)[:top]
        return [[round(100.0 * v / max(1, total), 1), k] for v, k in items]
    return {"samples": total, "raw": path, "self_pct": top_of(self_c),
            "inclusive_pct_ruma_tx": top_of(incl, lambda k: "ruma_tx" in k)}


# ------------------------------------------------------------------------- table
def dig(d: Any, path: str) -> Any:
    for p in path.split("."):
        d = d.get(p) if isinstance(d, dict) else None
    return d


UP, DOWN = " ↑", " ↓"
COMMON = [("server CPU ms/op" + DOWN, "result.server_cpu_ms_per_op"),
          ("server+aux CPU ms/op" + DOWN, "result.server_plus_aux_cpu_ms_per_op"),
          ("server CPU %", "resources.server_cpu_pct"),
          ("main thread runnable %", "resources.server_main_thread_runnable_pct"),
          ("aux (PostgreSQL) CPU %", "resources.aux_cpu_pct"),
          ("harness CPU %", "resources.harness_cpu_pct"),
          ("other load %", "resources.other_procs_cpu_pct"),
          ("of which the other server %", "resources.peer_server_cpu_pct"),
          ("status", "status")]
FAN = [("delivery p50 ms" + DOWN, "result.delivery_latency_ms.p50"),
       ("delivery p95 ms" + DOWN, "result.delivery_latency_ms.p95"),
       ("delivery p99 ms" + DOWN, "result.delivery_latency_ms.p99"),
       ("deliveries/s" + UP, "result.deliveries_per_s"),
       ("offered deliveries/s", "result.offered_deliveries_per_s"),
       ("missing deliveries" + DOWN, "result.deliveries_missing"),
       ("send p50 ms" + DOWN, "result.send_latency_ms.p50"),
       ("send p99 ms" + DOWN, "result.send_latency_ms.p99"),
       ("sync responses/s", "result.sync_responses_per_s"),
       ("events per sync response", "result.events_per_sync_response")]
METRICS = {
    "initial_sync": [("p50 ms" + DOWN, "result.latency_ms.p50"), ("runs ms", "result.runs_ms"),
                     ("response bytes", "result.response_bytes"),
                     ("rooms in response", "result.joined_rooms_in_response")],
    "join": [("join p50 ms" + DOWN, "result.latency_ms.p50"),
             ("join p99 ms" + DOWN, "result.latency_ms.p99"), ("joins", "result.joins")],
    "big_fanout": FAN, "big_saturated": FAN, "fanout": FAN,
    "messages": [("page p50 ms" + DOWN, "result.page_latency_ms.p50"),
                 ("page p99 ms" + DOWN, "result.page_latency_ms.p99"),
                 ("pages", "result.pages"), ("events per page", "result.events_per_page")],
}
NO_RATIO = {"status", "runs ms", "other load %", "offered deliveries/s", "rooms in response",
            "joins", "pages", "events per page", "harness CPU %", "of which the other server %"}
TITLES = {"initial_sync": "1. initial sync", "join": "2a. join", "big_fanout": "2b. fan-out",
          "big_saturated": "2c. saturated fan-out", "messages": "3. /messages",
          "fanout": "4. fan-out (compare.sh)"}


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def combine(vals: list) -> Any:
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    if all(is_num(v) for v in vals):
        return statistics.median(vals) if len(vals) > 1 else vals[0]
    if all(isinstance(v, list) for v in vals):
        return vals[-1]
    return "/".join(dict.fromkeys(str(v) for v in vals))


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:.0f}"
        return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, list):
        return "/".join(fmt(x) for x in v)
    return str(v)


def ratio(a: Any, b: Any) -> str:
    if not (is_num(a) and is_num(b)) or b == 0:
        return "–"
    r = a / b
    return f"{r:.3f}" if r < 0.1 else f"{r:.2f}"


def grouped(runs: list[dict], labels: list[str]):
    groups: dict[tuple, dict] = {}
    for r in runs:
        key = (r["scenario"], r["variant"])
        groups.setdefault(key, {lab: [] for lab in labels})
        if r["label"] in labels:
            groups[key][r["label"]].append(r)
    return groups


def value(group: dict, label: str, path: str) -> Any:
    return combine([dig(r, path) for r in group.get(label, [])])


def table(runs: list[dict], labels: list[str], driver: "Driver | None" = None) -> str:
    drv = driver or SCALE
    a, b = labels
    head = ["scenario", "metric", a, b, f"{a}/{b}"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (scen, variant), g in grouped(runs, labels).items():
        n = max(len(v) for v in g.values())
        title = f"{drv.titles.get(scen, scen)}: {variant}" + (f" (median of {n})" if n > 1 else "")
        first = True
        for name, path in drv.metrics.get(scen, []) + COMMON:
            va, vb = value(g, a, path), value(g, b, path)
            if va is None and vb is None:
                continue
            out.append("| " + " | ".join([title if first else "", name, fmt(va), fmt(vb),
                                          "" if name in NO_RATIO | drv.no_ratio
                                          else ratio(va, vb)]) + " |")
            first = False
    return "\n".join(out)


def targets(runs: list[dict], labels: list[str], sz: Sizes) -> str:
    a, b = labels
    g = grouped(runs, labels)
    rows = ["| target | measured | met |", "|---|---|---|"]

    def find(scen: str, pred=lambda v: True):
        for (s, v), grp in g.items():
            if s == scen and pred(v):
                return grp
        return None

    def verdict(ok):
        return "–" if ok is None else ("yes" if ok else "**no**")
    isg = find("initial_sync")
    if isg:
        ra, rb = value(isg, a, "result.latency_ms.p50"), value(isg, b, "result.latency_ms.p50")
        ca = value(isg, a, "result.server_plus_aux_cpu_ms_per_op")
        cb = value(isg, b, "result.server_plus_aux_cpu_ms_per_op")
        ok = None if not (is_num(ra) and is_num(rb)) else (ra <= rb / 20 and ra < 1000)
        rows.append(f"| initial sync ({sz.is_rooms} rooms): {a} p50 ≤ 1/20 of {b} and < 1 s | "
                    f"p50 {fmt(ra)} vs {fmt(rb)} ms = {ratio(ra, rb)}; CPU/sync (+PG) "
                    f"{fmt(ca)} vs {fmt(cb)} ms = {ratio(ca, cb)} | {verdict(ok)} |")
    for (s, v), grp in g.items():
        if s == "join":
            la, lb = value(grp, a, "result.latency_ms.p50"), value(grp, b, "result.latency_ms.p50")
            ca = value(grp, a, "result.server_plus_aux_cpu_ms_per_op")
            cb = value(grp, b, "result.server_plus_aux_cpu_ms_per_op")
            rows.append(f"| join, {v} (no numeric target) | p50 {fmt(la)} vs {fmt(lb)} ms = "
                        f"{ratio(la, lb)}; CPU/join (+PG) {fmt(ca)} vs {fmt(cb)} ms = "
                        f"{ratio(ca, cb)} | |")
    fg = find("big_fanout")
    if fg:
        pa = value(fg, a, "result.delivery_latency_ms.p99")
        pb = value(fg, b, "result.delivery_latency_ms.p99")
        ok = None if not (is_num(pa) and is_num(pb)) else pa <= pb / 5
        rows.append(f"| fan-out p99 ≤ 1/5 of {b} ({sz.fan_syncers} syncers, {sz.fan_rate:g} msg/s) | "
                    f"{fmt(pa)} vs {fmt(pb)} ms = {ratio(pa, pb)} | {verdict(ok)} |")
    sg = find("big_saturated")
    if sg:
        da, db = value(sg, a, "result.deliveries_per_s"), value(sg, b, "result.deliveries_per_s")
        ok = None if not (is_num(da) and is_num(db)) else da >= 5 * db
        rows.append(f"| saturated deliveries/s ≥ 5× {b} ({sz.sat_rate:g} msg/s offered) | "
                    f"{fmt(da)} vs {fmt(db)} = {ratio(da, db)}× | {verdict(ok)} |")
    for lab in labels:
        pts = []
        for (s, v), grp in g.items():
            if s == "messages" and grp.get(lab):
                r0 = grp[lab][0]
                pts.append((r0["params"].get("room_events"), r0["params"].get("position"),
                            value(grp, lab, "result.page_latency_ms.p50"),
                            value(grp, lab, "result.server_plus_aux_cpu_ms_per_op")))
        if not pts:
            continue
        for pos in dict.fromkeys(p[1] for p in pts):
            pp = sorted(p for p in pts if p[1] == pos and p[0] is not None)
            if len(pp) < 2 or not all(is_num(p[2]) and is_num(p[3]) for p in pp):
                continue
            lo, hi = pp[0], pp[-1]
            # CPU times come in 10 ms clock ticks (server and PostgreSQL): allow that quantum
            flat = hi[3] <= 1.5 * lo[3] + 2 * 10.0 / max(1, sz.msg_pages)
            desc = ", ".join(f"{p[0]:,}: {fmt(p[2])} ms / {fmt(p[3])} ms CPU" for p in pp)
            rows.append(f"| /messages flat with room size, {lab}, from the {pos} "
                        f"(CPU/page at {hi[0]:,} ≤ 1.5× at {lo[0]:,}) | {desc} "
                        f"(CPU ×{hi[3] / lo[3]:.2f}) | {verdict(flat) if lab == a else ''} |")
    mg = find("fanout")
    if mg:
        pa = value(mg, a, "result.delivery_latency_ms.p99")
        pb = value(mg, b, "result.delivery_latency_ms.p99")
        ok = None if not (is_num(pa) and is_num(pb)) else pa <= pb / 5
        rows.append(f"| compare.sh fan-out p99 ≤ 1/5 of {b} | {fmt(pa)} vs {fmt(pb)} ms = "
                    f"{ratio(pa, pb)} | {verdict(ok)} |")
    return "\n".join(rows)


def render(doc: dict, sz: Sizes, driver: "Driver") -> str:
    meta = doc["scale"]
    labels = [s["label"] for s in meta["sides"]]
    lines = [f"# {driver.title}: {labels[0]} vs {labels[1]}", "",
             f"Started {meta['started_at']}, finished {meta.get('finished_at', '?')}; "
             f"{meta['machine']['cores']} cores, load average at start "
             f"{meta['machine']['loadavg_start']}; bcrypt rounds {meta.get('bcrypt_rounds')}; "
             f"mode: {meta['mode']}.", ""]
    if meta.get("ruma_code"):
        lines += [f"ruma_tx code: {meta['ruma_code']}.", ""]
    for s in meta["sides"]:
        lines.append(f"- {s['label']}: {s['url']} (server `{s.get('server_header')}`), "
                     f"PID {s['pid']}, aux PIDs {s['aux_pids']}")
    lines += ["", "## Targets", "", driver.targets(doc["runs"], labels, sz), "",
              "## All figures", "", table(doc["runs"], labels, driver), ""]
    if any((meta.get("seeding") or {}).values()):
        lines += ["## Seeding (not measured)", ""] + seeding_md(meta["seeding"], labels)
    prof = [r for r in doc["runs"] if dig(r, "resources.profile.samples")]
    if prof:
        lines += ["## Where the profiled server's time goes (py-spy, measured windows)", ""]
        for r in prof:
            p = r["resources"]["profile"]
            lines += [f"**{driver.titles.get(r['scenario'], r['scenario'])}: {r['variant']}** "
                      f"({r['label']}, {p['samples']} samples, `{p['raw']}`)", "",
                      "self: " + "; ".join(f"{pc}% {fr}" for pc, fr in p["self_pct"][:8]), "",
                      "inclusive (ruma_tx frames): " + "; ".join(
                          f"{pc}% {fr}" for pc, fr in p["inclusive_pct_ruma_tx"][:14]), ""]
    if meta.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------------- main
def seeding_summary(seeded: dict, sz: Sizes) -> dict:
    out: dict[str, Any] = {}
    big = seeded.get("big")
    if big:
        out["join_growth_while_seeding"] = {
            size: [{k: r.get(k) for k in ("members_after", "joins_per_s", "latency_ms_p50",
                                          "server_cpu_ms_per_op", "server_plus_aux_cpu_ms_per_op",
                                          "other_load_pct")} for r in recs]
            for size, recs in big.get("growth", {}).items()}
    msgs = seeded.get("messages") or {}
    out["messages_rooms"] = {str(k): {"seed_msgs_per_s": v.get("seed_msgs_per_s"),
                                      "seed_s": v.get("seed_s")} for k, v in msgs.items()}
    isync = seeded.get("initial_sync")
    if isync:
        out["initial_sync_seed_s"] = isync.get("seed_s")
    return out


SEED_NOTE = ("joins in flight concurrently, both servers seeded at the same time, so joins/s "
             "is only indicative")


def seeding_md(seeding: dict, labels: list[str]) -> list[str]:
    """The join cost while the largest room filled (seeding, SEED_CONC joins in flight, both
    servers seeded at once) and the seeding rates of the /messages rooms."""
    lines: list[str] = []
    a, b = labels
    ga = (seeding.get(a) or {}).get("join_growth_while_seeding") or {}
    gb = (seeding.get(b) or {}).get("join_growth_while_seeding") or {}
    sizes = sorted({int(k) for k in list(ga) + list(gb)})
    if sizes:
        big = str(sizes[-1])
        lines += [f"Join cost while the {int(big):,}-member room filled (seeding: {SEED_NOTE}). "
                  f"Server CPU only: PostgreSQL is shared and was busy with both servers.", "",
                  f"| members | {a} CPU/join ms | {b} CPU/join ms | ratio | "
                  f"{a} joins/s | {b} joins/s |", "|---|---|---|---|---|---|"]

        def near(recs, target):
            return min(recs, key=lambda r: abs((r.get("members_after") or 0) - target)) if recs else {}
        seen = set()
        for f in (0.05, 0.1, 0.25, 0.5, 0.75, 1.0):
            t = int(sizes[-1] * f)
            ra, rb = near(ga.get(big, []), t), near(gb.get(big, []), t)
            key = (ra.get("members_after"), rb.get("members_after"))
            if key in seen:
                continue
            seen.add(key)
            pa, pb = ra.get("server_cpu_ms_per_op"), rb.get("server_cpu_ms_per_op")
            lines.append(f"| {ra.get('members_after') or rb.get('members_after')} | "
                         f"{fmt(pa)} | {fmt(pb)} | {ratio(pa, pb)} | "
                         f"{fmt(ra.get('joins_per_s'))} | {fmt(rb.get('joins_per_s'))} |")
        lines.append("")
    rows = []
    for lab in labels:
        for size, v in ((seeding.get(lab) or {}).get("messages_rooms") or {}).items():
            if v.get("seed_msgs_per_s"):
                rows.append(f"| {lab} | {int(size):,} | {fmt(v['seed_msgs_per_s'])} | "
                            f"{fmt((v.get('seed_s') or 0) / 60)} |")
    if rows:
        lines += ["Seeding of the /messages rooms (recorded when each was seeded; later runs reuse them):", "",
                  "| server | room events | msgs/s | minutes |", "|---|---|---|---|"] + rows + [""]
    return lines


def scale_steps(sz: Sizes, scenarios: list[str], args: argparse.Namespace, runid: str,
                rnd: int) -> list[tuple[str, Any]]:
    """The measured steps of one round: (name, fn(side, seeded data) -> coroutine or None)."""
    steps: list[tuple[str, Any]] = []
    if "initial_sync" in scenarios:
        steps.append(("initial_sync", lambda s, sd: m_initial_sync(
            s, sz, sd["initial_sync"], args.cap_s)))
    if "join" in scenarios:
        for size in sz.big_sizes:
            steps.append((f"join {size}", lambda s, sd, size=size: (
                m_join(s, sz, sd["big"], size, f"{runid}{rnd}", args.cap_s)
                if str(size) in sd["big"]["rooms"] else None)))
    if "big_fanout" in scenarios:
        steps.append(("big_fanout", lambda s, sd: m_fanout(
            s, sz, sd["big"], sz.fan_m, sz.fan_rate, "big_fanout", f"{runid}{rnd}f")))
    if "big_saturated" in scenarios:
        steps.append(("big_saturated", lambda s, sd: m_fanout(
            s, sz, sd["big"], sz.sat_m, sz.sat_rate, "big_saturated", f"{runid}{rnd}s")))
    if "messages" in scenarios:
        for size in sz.msg_sizes:
            for pos in sz.msg_positions:
                steps.append((f"messages {size} {pos}", lambda s, sd, size=size, pos=pos: (
                    m_messages(s, sz, sd["messages"][size], size, pos, args.cap_s)
                    if size in sd["messages"] else None)))
    if "fanout" in scenarios:
        tmpdir = os.path.dirname(os.path.abspath(args.out))
        steps.append(("fanout", lambda s, sd: asyncio.to_thread(
            m_mxbench_fanout, s, sz, tmpdir, sys.executable)))
    return steps


@dataclass
class Driver:
    """A set of scenarios amain() runs side by side: scale.py's own (SCALE), or another
    driver's (bench/sliding.py imports this file by path and passes its Driver to main())."""
    title: str                    # heading of the .md
    titles: dict[str, str]        # scenario -> title in the tables; its keys, in order, are
                                  # the known scenarios and the default --scenarios
    metrics: dict[str, list]      # scenario -> [(row name, path in a record)], before COMMON
    #: async (side, index of the side, sizes, scenarios, cap_s) -> the side's seeded data
    seed: Callable[..., Any]
    #: (sizes, scenarios, args, runid, round) -> [(step name, fn(side, seeded data))]
    steps: Callable[..., list[tuple[str, Any]]]
    targets: Callable[[list[dict], list[str], Sizes], str]   # the targets table (markdown)
    seeding_summary: Callable[[dict, Sizes], dict] = lambda seeded, sz: {}
    no_ratio: frozenset[str] = frozenset()   # row names without a ratio


SCALE = Driver(title="Scale benchmark", titles=TITLES, metrics=METRICS, seed=seed_side,
               steps=scale_steps, targets=targets, seeding_summary=seeding_summary)


async def amain(args: argparse.Namespace, driver: Driver) -> int:
    sz = Sizes.from_env(args.smoke)
    scenarios = args.scenarios.split()
    bad = set(scenarios) - set(driver.titles)
    if bad:
        sys.exit(f"unknown scenarios: {' '.join(sorted(bad))} (known: {' '.join(driver.titles)})")
    bench_home = os.environ.get("BENCH_HOME") or os.path.expanduser("~/.cache/ruma-bench")
    state_dir = os.path.join(bench_home, "scale")
    sides = [Side(args.a_label, args.a_url, args.a_pid, args.a_aux_pid or []),
             Side(args.b_label, args.b_url, args.b_pid, args.b_aux_pid or [])]
    sides[0].peer, sides[1].peer = sides[1], sides[0]
    if args.only:
        sides = [s for s in sides if s.label == args.only]
    runid = "".join(random.choices(string.ascii_lowercase + string.digits, k=6))
    doc = {"scale": {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runid": runid,
        "mode": "smoke" if args.smoke else "full", "scenarios": scenarios,
        "sizes": sz.__dict__, "driver": driver.title,
        "bcrypt_rounds": os.environ.get("BCRYPT_ROUNDS"),
        "kit": KIT, "sides": [], "ruma_code": os.environ.get("RUMA_CODE"),
        "machine": {"cores": os.cpu_count(), "loadavg_start": os.getloadavg(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "notes": []}, "runs": []}
    out_json = args.out
    out_md = out_json[:-5] + ".md" if out_json.endswith(".json") else out_json + ".md"
    os.makedirs(os.path.dirname(os.path.abspath(out_json)), exist_ok=True)

    def save():
        tmp = out_json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, out_json)

    sessions = []
    for s in sides:
        sess = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        sessions.append(sess)
        s.http = mx.Http(sess, s.url)
        st, js, _ = await s.http.req("GET", "/_matrix/client/versions", timeout=10)
        if st != 200:
            sys.exit(f"{s.label}: {s.url}/_matrix/client/versions -> HTTP {st}")
        s.server_header = s.http.server_header
        suffix = "-smoke" if args.smoke else ""
        s.state = State(os.path.join(state_dir, f"state-{s.label}{suffix}.json"), s.label, s.url)
        doc["scale"]["sides"].append({"label": s.label, "url": s.url, "pid": s.pid,
                                      "aux_pids": s.aux, "server_header": s.server_header,
                                      "state_file": s.state.path})
    try:
        # ---- seeding (resumable, reused by later runs)
        log(f"seeding / checking seeded data ({'in parallel' if args.seed_parallel else 'one server after the other'})")
        if args.seed_parallel and len(sides) == 2:
            seeded = await asyncio.gather(*[driver.seed(s, i, sz, scenarios, args.seed_cap_s)
                                            for i, s in enumerate(sides)])
        else:
            seeded = [await driver.seed(s, i, sz, scenarios, args.seed_cap_s)
                      for i, s in enumerate(sides)]
        doc["scale"]["seeding"] = {s.label: driver.seeding_summary(sd, sz)
                                   for s, sd in zip(sides, seeded)}
        save()
        if args.seed_only:
            log("seed only: done")
            return 0
        # ---- measured, alternating side by side, scenario by scenario
        if args.profile_dir:
            PROFILE.update(on=True, dir=args.profile_dir, py_spy=args.py_spy, label=args.a_label)
            doc["scale"]["notes"].append(f"py-spy attached to {args.a_label} in every measured "
                                         "window (adds some other load)")
        for rnd in range(1, args.rounds + 1):
            for name, fn in driver.steps(sz, scenarios, args, runid, rnd):
                for s, sd in zip(sides, seeded):
                    coro = fn(s, sd)
                    if coro is None:
                        continue
                    log(f"round {rnd}: {name} on {s.label}")
                    PROFILE["step"] = f"{runid}-{rnd}-{name.replace(' ', '_')}"
                    try:
                        rec = await coro
                    except Exception as e:  # keep going: one failed step should not lose the run
                        log(f"{s.label}: {name} failed: {e!r}")
                        rec = record(s, name.split()[0], name, {}, {"error": repr(e)[:500]}, {},
                                     "error")
                    rec["round"] = rnd
                    doc["runs"].append(rec)
                    save()
                    log(f"{s.label}: {name}: {brief(rec)}")
                    await asyncio.sleep(args.pause_s)
        doc["scale"]["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        doc["scale"]["machine"]["loadavg_end"] = os.getloadavg()
        save()
        labels = [args.a_label, args.b_label]
        md = render(doc, sz, driver) if len(sides) == 2 else table(doc["runs"], labels, driver)
        with open(out_md, "w") as f:
            f.write(md)
        print(md)
        log(f"results: {out_json}, table: {out_md}")
        return 0
    finally:
        for sess in sessions:
            await sess.close()


def brief(rec: dict) -> str:
    r = rec.get("result", {})
    keys = ["latency_ms.p50", "delivery_latency_ms.p50", "delivery_latency_ms.p99",
            "deliveries_per_s", "deliveries_missing", "page_latency_ms.p50",
            "server_cpu_ms_per_op", "server_plus_aux_cpu_ms_per_op", "error"]
    parts = [f"{k}={dig(r, k)}" for k in keys if dig(r, k) is not None]
    return f"[{rec['status']}] " + " ".join(parts)


def main(driver: Driver | None = None, description: str = __doc__) -> None:
    driver = driver or SCALE
    p = argparse.ArgumentParser(description=description.split("\n\n")[0])
    p.add_argument("--a-url", required=True)
    p.add_argument("--b-url", required=True)
    p.add_argument("--a-label", default="ruma_tx")
    p.add_argument("--b-label", default="synapse")
    p.add_argument("--a-pid", type=int)
    p.add_argument("--b-pid", type=int)
    p.add_argument("--a-aux-pid", type=int, action="append")
    p.add_argument("--b-aux-pid", type=int, action="append")
    p.add_argument("--scenarios", default=" ".join(driver.titles))
    p.add_argument("--smoke", action="store_true", help="tiny sizes (own state files)")
    p.add_argument("--only", help="measure only the side with this label (debugging)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--pause-s", type=float, default=2.0)
    p.add_argument("--cap-s", type=float, default=300.0, help="cap of one measured step")
    p.add_argument("--seed-cap-s", type=float, default=3 * 3600.0,
                   help="cap of the seeding of one server (resumable)")
    p.add_argument("--seed-parallel", type=int, default=1,
                   help="seed both servers at the same time (1) or one after the other (0)")
    p.add_argument("--seed-only", action="store_true")
    p.add_argument("--out", required=True, help="result JSON; the table goes next to it as .md")
    p.add_argument("--watchdog-s", type=float, default=8 * 3600.0)
    p.add_argument("--profile-dir", help="attach py-spy to side A (--a-pid) during each "
                   "measured step; raw stacks go here, top frames into the JSON")
    p.add_argument("--py-spy", default="py-spy", help="py-spy executable")
    args = p.parse_args()
    if args.a_label == args.b_label:
        p.error("labels must differ")
    signal.alarm(int(args.watchdog_s))  # the process ends by itself whatever happens
    sys.exit(asyncio.run(amain(args, driver)))


if __name__ == "__main__":
    main()
