#!/usr/bin/env python3
"""federation.py - issue 11's federation targets, ruma_tx and Synapse side by side, in one run.

Servers (started by bench/federation.sh, described in --servers): a ruma_tx ORIGIN, a ruma_tx
TARGET, and two Synapse peers SYN_A and SYN_B (synapse-peer.sh, on PostgreSQL like ruma_tx).

  inbound_send  SEND_PDUS (1000) m.room.message PDUs in transactions of SEND_PER_TXN (50),
                PUT /send one after the other, X-Matrix signed with ORIGIN's key, from a room of
                ORIGIN the target joined; the chain is built here (ruma_tx.matrix.events.build_pdu)
                on the target's extremity. Target = TARGET, then SYN_A. Each transaction is
                sent once the target shows the last PDU of the one before (see inbound_send
                for why). PDUs/s, target CPU ms per PDU, and every PDU found again through
                the target's /messages.
  remote_join   a room of ORIGIN with JOIN_MEMBERS (1000) joined members and JOIN_STATE (10000)
                state events in all (the members, the initial state and custom state events
                with distinct keys); a fresh user of TARGET, then of SYN_A, joins it:
                time of POST /join until 200, the target's RSS growth (peak, sampled every
                20 ms, and 3 s after), its CPU during the join and in the 3 s after.
  latency       a user of X sends LAT_N (200) messages one at a time, one every LAT_INTERVAL_MS
                (250); a user of Y long-polls /sync; latency = arrival of the sync response
                carrying a message - start of its PUT. Pairs: ORIGIN -> TARGET (ruma_tx) and
                SYN_A -> SYN_B (Synapse).

CPU comes from /proc/<pid>/stat (utime + stime) of the server process; "+pg" adds the
PostgreSQL postmaster and its backends (shared by all four servers: the idle ones add a
little); RSS from /proc/<pid>/status. SMOKE sizes: see SIZES. Needs ruma_tx importable
(run with the repository's .venv python) and aiohttp; the kit's mxbench.py is imported
by path for its HTTP client, registration and percentiles, as bench/scale.py does.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import ssl
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import quote

KIT = os.environ.get("BENCH_KIT", "/work/shared/bench")
HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name: str, path: str):
    if not os.path.isfile(path):
        sys.exit(f"federation.py: {path} not found (BENCH_KIT={KIT})")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


mx = _load("mxbench", os.path.join(KIT, "mxbench.py"))
import aiohttp  # noqa: E402
from signedjson.key import read_signing_keys  # noqa: E402
from yarl import URL  # noqa: E402

from ruma_tx.matrix.events import build_pdu  # noqa: E402
from ruma_tx.matrix.federation_auth import x_matrix_header  # noqa: E402
from ruma_tx.matrix.room_versions import as_room_version  # noqa: E402

CS = "/_matrix/client/v3"
FED = "/_matrix/federation/v1"
SCENARIOS = ("inbound_send", "remote_join", "latency")
PASSWORD = "bench-Pw-1"
now = time.perf_counter
#: (full, smoke)
SIZES = {"SEND_PDUS": (1000, 100), "SEND_PER_TXN": (50, 50), "JOIN_MEMBERS": (1000, 20),
         "JOIN_STATE": (10000, 200), "LAT_N": (200, 20), "LAT_INTERVAL_MS": (250, 100),
         "SEED_CONC": (16, 8)}
CLK = os.sysconf("SC_CLK_TCK")


def log(*a: Any) -> None:
    print(f"[federation {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ /proc accounting
def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()  # fields from the 3rd (state) on


def cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    f = _stat(pid)
    return (int(f[11]) + int(f[12])) / CLK


def postgres_cpu_s(postmaster: int) -> float:
    """The postmaster (with its reaped children) and its live backends."""
    f = _stat(postmaster)
    total = sum(int(x) for x in f[11:15]) / CLK
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                g = _stat(int(name))
            except (OSError, ValueError):
                continue
            if int(g[1]) == postmaster:
                total += (int(g[11]) + int(g[12])) / CLK
    return total


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def runqueue_wait_s(pid: int) -> float:
    """Time the main thread was runnable but waited for a CPU (other load shows here)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def machine_busy_s() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK  # all but idle and iowait


class Window:
    """CPU of every bench server, PostgreSQL, the harness and the rest of the machine over a
    measured window; optionally the RSS of one server sampled every 20 ms, and py-spy on one."""

    def __init__(self, run: "Run", rss_of: "Server | None" = None, profile: "Server | None" = None,
                 step: str = "") -> None:
        self.run, self.rss_of, self.step = run, rss_of, step
        self.profile = profile if run.args.profile_dir and profile and profile.kind == "ruma" else None
        self.samples: list[float] = []

    def _snap(self) -> dict:
        servers = {s.label: cpu_s(s.pid) for s in self.run.servers.values()}
        waits = {s.label: runqueue_wait_s(s.pid) for s in self.run.servers.values()}
        t = os.times()
        return {"wall": now(), "servers": servers, "waits": waits, "self": t.user + t.system, "busy": machine_busy_s(),
                "pg": postgres_cpu_s(self.run.args.pg_pid) if self.run.args.pg_pid else 0.0}

    async def _sample(self) -> None:
        while True:
            self.samples.append(rss_mib(self.rss_of.pid))
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> "Window":
        self.prof = None
        if self.profile:
            scale = sys.modules.get("scale") or _load("scale", os.path.join(HERE, "scale.py"))  # py-spy
            os.makedirs(self.run.args.profile_dir, exist_ok=True)
            self.prof = scale.Profiler(self.run.args.py_spy, self.profile.pid, os.path.join(
                self.run.args.profile_dir, f"{self.step}-{self.profile.label}.txt"))
        self.rss_before = rss_mib(self.rss_of.pid) if self.rss_of else None
        self.sampler = asyncio.get_running_loop().create_task(self._sample()) if self.rss_of else None
        self.s0 = self._snap()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        s1 = self._snap()
        if self.sampler:
            self.sampler.cancel()
        s0, wall = self.s0, s1["wall"] - self.s0["wall"]
        cpu = {k: round(s1["servers"][k] - s0["servers"][k], 3) for k in s1["servers"]}
        pg = s1["pg"] - s0["pg"]
        harness = s1["self"] - s0["self"]
        other = (s1["busy"] - s0["busy"]) - sum(cpu.values()) - pg - harness
        self.r: dict[str, Any] = {
            "wall_s": round(wall, 3), "cpu_s": cpu, "pg_cpu_s": round(pg, 3),
            "runqueue_wait_s": {k: round(s1["waits"][k] - s0["waits"][k], 3) for k in cpu},
            "harness_cpu_pct": round(100 * harness / wall, 1),
            "other_load_pct": round(100 * max(0.0, other) / wall, 1)}
        if self.rss_of:
            self.r["rss_before_mib"] = round(self.rss_before, 1)
            self.r["rss_peak_mib"] = round(max(self.samples + [rss_mib(self.rss_of.pid)]), 1)
        if self.prof:
            self.r["profile"] = self.prof.stop()

    def per_op(self, server: "Server", ops: int, name: str) -> dict:
        own = self.r["cpu_s"][server.label]
        return {f"cpu_ms_per_{name}": round(1000 * own / ops, 3),
                f"cpu_plus_pg_ms_per_{name}": round(1000 * (own + self.r["pg_cpu_s"]) / ops, 3)}


# ----------------------------------------------------------------------------- servers
@dataclass
class Server:
    label: str
    kind: str  # "ruma" or "synapse"
    server_name: str
    client_url: str
    fed_url: str
    pid: int
    signing_key_path: str | None = None
    http: Any = None

    async def user(self, localpart: str) -> Any:
        return await mx.UIARegistrar().create(self.http, localpart, PASSWORD)

    async def call(self, method: str, path: str, token: str, body: Any = None, **params: str) -> Any:
        return await self.http.call(method, CS + path, token=token, body=body, params=params or None,
                                    timeout=600, tries=2)


async def bounded(jobs: list[Callable[[], Awaitable[Any]]], n: int) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def one(job):
        async with sem:
            return await job()
    return await asyncio.gather(*(one(j) for j in jobs))


async def create_room(server: Server, token: str, **extra: Any) -> str:
    body = {"preset": "public_chat", **extra}
    return (await server.call("POST", "/createRoom", token, body))["room_id"]


async def join(server: Server, token: str, room_id: str, via: str) -> None:
    await server.call("POST", f"/join/{quote(room_id, safe='')}", token, {}, server_name=via, via=via)


# ---------------------------------------------------------------------- the run
@dataclass
class Chain:
    """Where the next built PDU goes in a target's room."""
    room_id: str
    version: Any
    auth_events: list[str]
    prev: str
    depth: int
    reader: Any  # the target's user who joined it
    sent: int = 0


@dataclass
class Run:
    args: argparse.Namespace
    servers: dict[str, Server]
    sizes: dict[str, int]
    tag: str = field(default_factory=lambda: f"{int(time.time()) % 10**6}")
    origin_user: Any = None
    chains: dict[str, Chain] = field(default_factory=dict)
    big_rooms: list[str] = field(default_factory=list)
    members: list[Any] = field(default_factory=list)
    polls: int = 0

    def __post_init__(self) -> None:
        self.tls = ssl.create_default_context(cafile=self.args.ca)
        self.keys: dict[str, Any] = {}

    def key_of(self, server: Server) -> Any:
        if server.label not in self.keys:
            with open(server.signing_key_path) as f:
                self.keys[server.label] = read_signing_keys(f)[0]
        return self.keys[server.label]

    async def federation(self, method: str, target: Server, path: str, body: Any = None) -> Any:
        """A request from ORIGIN to a target's federation API (C{path} already encoded)."""
        origin = self.servers["origin"]
        auth = x_matrix_header(self.key_of(origin), origin.server_name, target.server_name, method, path, body)
        async with self.session.request(method, URL(target.fed_url + path, encoded=True), ssl=self.tls,
                                        headers={"Authorization": auth}, json=body,
                                        timeout=aiohttp.ClientTimeout(total=600)) as r:
            answer = await r.json(content_type=None)
            if r.status != 200:
                raise RuntimeError(f"{method} {path} on {target.label}: {r.status} {answer}")
            return answer

    # ---- inbound_send
    async def send_room(self, target: Server) -> Chain:
        """A room of ORIGIN that a user of the target joined, and its extremity there."""
        if target.label in self.chains:
            return self.chains[target.label]
        origin, alice = self.servers["origin"], self.origin_user
        room_id = await create_room(origin, alice.token)
        reader = await target.user(f"fedsend{self.tag}")
        await join(target, reader.token, room_id, origin.server_name)
        path = f"/rooms/{quote(room_id, safe='')}"
        state = await target.call("GET", f"{path}/state", reader.token)
        ids = {(e["type"], e["state_key"]): e["event_id"] for e in state}
        create = next(e for e in state if e["type"] == "m.room.create")
        version = as_room_version(create["content"].get("room_version", "1"))
        auth = [ids[("m.room.power_levels", "")], ids[("m.room.member", alice.user_id)]]
        if not version.room_id_from_create_event:
            auth.append(ids[("m.room.create", "")])
        extremity = ids[("m.room.member", reader.user_id)]
        # ORIGIN made the room one event after the other (depth 1, 2, ...) and accepted the
        # join last: its depth is the number of events ORIGIN has (ruma_tx serves no
        # GET /event yet; Synapse's answer checks this).
        history = await origin.call("GET", f"{path}/messages", alice.token, dir="b", limit="1000")
        if history["chunk"][0]["event_id"] != extremity:
            raise RuntimeError(f"ORIGIN's last event in {room_id} is not {target.label}'s join")
        depth = len(history["chunk"])
        if target.kind == "synapse":
            pdu = (await self.federation("GET", target, f"{FED}/event/{quote(extremity, safe='')}"))["pdus"][0]
            if pdu["depth"] != depth:
                raise RuntimeError(f"the join's depth is {pdu['depth']}, not {depth}")
        self.chains[target.label] = Chain(room_id, version, auth, extremity, depth + 1, reader)
        return self.chains[target.label]

    def build(self, chain: Chain, count: int) -> list[dict]:
        origin, pdus = self.servers["origin"], []
        for _ in range(count):
            event_id, pdu = build_pdu(
                room_version=chain.version, room_id=chain.room_id, sender=self.origin_user.user_id,
                event_type="m.room.message", state_key=None,
                content={"msgtype": "m.text", "body": f"fedbench {self.tag} {chain.sent}"},
                prev_events=[chain.prev], auth_events=chain.auth_events, depth=chain.depth,
                origin_server_ts=int(time.time() * 1000), server_name=origin.server_name,
                signing_key=self.key_of(origin))
            pdus.append(pdu)
            chain.prev, chain.depth, chain.sent = event_id, chain.depth + 1, chain.sent + 1
        return pdus

    async def last_body(self, server: Server, user: Any, room_id: str) -> Any:
        page = await server.call("GET", f"/rooms/{quote(room_id, safe='')}/messages", user.token,
                                 dir="b", limit="1")
        return page["chunk"][0].get("content", {}).get("body") if page["chunk"] else None

    async def until_shown(self, server: Server, user: Any, room_id: str, body: str, stall_s: float) -> bool:
        """
        Poll until C{body} is the room's last message there, every 100 ms (each poll costs the
        server a /messages request); False when nothing moved for C{stall_s}.
        """
        seen, since = None, now()
        while True:
            current = await self.last_body(server, user, room_id)
            self.polls += 1
            if current == body:
                return True
            if current != seen:
                seen, since = current, now()
            elif now() - since > stall_s:
                return False
            await asyncio.sleep(0.1)

    async def inbound_send(self, target: Server, rnd: int) -> dict:
        """
        One transaction at a time, the next once the target shows the last PDU of this one
        (GET /messages). Synapse answers /send once the PDUs are staged and processes them
        afterwards; past 100 staged events of a room it drops all but the newest and fetches
        the rest back from the origin (GET /get_missing_events, which ruma_tx does not serve
        yet), so sending on its answers alone measures that pruning, not its processing.
        """
        chain = await self.send_room(target)
        n, per = self.sizes["SEND_PDUS"], self.sizes["SEND_PER_TXN"]
        first = chain.sent
        pdus = self.build(chain, n)  # before the window: building them is the origin's work
        origin = self.servers["origin"].server_name
        txn_s, answer_s, refused, complete = [], [], 0, True
        self.polls = 0
        async with Window(self, profile=target, step=f"inbound_send-r{rnd}") as w:
            start = now()
            for i in range(0, n, per):
                batch = pdus[i:i + per]
                body = {"origin": origin, "origin_server_ts": int(time.time() * 1000), "pdus": batch, "edus": []}
                t0 = now()
                answer = await self.federation("PUT", target, f"{FED}/send/b{self.tag}r{rnd}t{i}", body)
                answer_s.append(now() - t0)
                refused += sum(1 for v in answer.get("pdus", {}).values() if v.get("error"))
                complete = await self.until_shown(target, chain.reader, chain.room_id,
                                                  batch[-1]["content"]["body"], 60)
                txn_s.append(now() - t0)
                if not complete:
                    break
            wall = now() - start
        found = await self.count_messages(target, chain, first, n)
        return {"pdus": n, "transactions": len(txn_s), "pdus_per_s": round(n / wall, 1) if complete else None,
                "status": "ok" if complete and found == n else f"stalled: {found} of {n} shown",
                "wall_s": round(wall, 3), "refused": refused, "found_in_messages": found,
                "messages_polls": self.polls,
                "txn_ms": mx.lat_summary(txn_s), "txn_answer_ms": mx.lat_summary(answer_s),
                **w.per_op(target, n, "pdu"), "resources": w.r}

    async def count_messages(self, target: Server, chain: Chain, first: int, n: int) -> int:
        """How many of the bodies first..first+n-1 the target's /messages shows."""
        want = {f"fedbench {self.tag} {i}" for i in range(first, first + n)}
        seen: set[str] = set()
        token, params = chain.reader.token, {"dir": "b", "limit": "500"}
        for _ in range(100):
            page = await target.call("GET", f"/rooms/{quote(chain.room_id, safe='')}/messages", token, **params)
            seen |= {e.get("content", {}).get("body") for e in page.get("chunk", [])} & want
            if len(seen) == n or not page.get("chunk") or not page.get("end"):
                break
            params["from"] = page["end"]
        return len(seen)

    # ---- remote_join
    async def seed_big_room(self) -> str:
        origin, alice, conc = self.servers["origin"], self.origin_user, self.sizes["SEED_CONC"]
        t0 = now()
        want = self.sizes["JOIN_MEMBERS"] - 1
        if len(self.members) < want:
            start = len(self.members)
            self.members += await bounded([lambda i=i: origin.user(f"m{self.tag}x{i}")
                                           for i in range(start, want)], conc)
        room_id = await create_room(origin, alice.token, name="federation bench")
        path = f"/rooms/{quote(room_id, safe='')}"
        await bounded([lambda u=u: join(origin, u.token, room_id, origin.server_name) for u in self.members],
                      conc)
        state = await origin.call("GET", f"{path}/state", alice.token)
        extra = self.sizes["JOIN_STATE"] - len(state)
        await bounded([lambda k=k: origin.call("PUT", f"{path}/state/org.ruma.bench/k{k}", alice.token,
                                               {"k": k}) for k in range(max(0, extra))], conc)
        state = await origin.call("GET", f"{path}/state", alice.token)
        members = sum(1 for e in state if e["type"] == "m.room.member"
                      and e["content"].get("membership") == "join")
        log(f"big room {room_id}: {members} members, {len(state)} state events, seeded in {now() - t0:.0f} s")
        self.big_room_sizes = {"members": members, "state_events": len(state)}
        return room_id

    async def remote_join(self, target: Server, rnd: int) -> dict:
        while len(self.big_rooms) <= rnd:
            self.big_rooms.append(await self.seed_big_room())
        room_id = self.big_rooms[rnd]
        carol = await target.user(f"fedjoin{self.tag}r{rnd}")
        async with Window(self, rss_of=target, profile=target, step=f"remote_join-r{rnd}") as w:
            t0 = now()
            await join(target, carol.token, room_id, self.servers["origin"].server_name)
            join_s = now() - t0
        async with Window(self, rss_of=target) as after:
            await asyncio.sleep(3)
        joined = await target.call("GET", f"/rooms/{quote(room_id, safe='')}/joined_members", carol.token)
        return {"join_s": round(join_s, 3), **self.big_room_sizes,
                "members_seen_by_target": len(joined.get("joined", {})),
                "rss_growth_peak_mib": round(max(w.r["rss_peak_mib"], after.r["rss_peak_mib"])
                                             - w.r["rss_before_mib"], 1),
                "rss_growth_after_3s_mib": round(rss_mib(target.pid) - w.r["rss_before_mib"], 1),
                "target_cpu_s": w.r["cpu_s"][target.label],
                "target_cpu_s_3s_after": after.r["cpu_s"][target.label],
                "origin_cpu_s": w.r["cpu_s"]["origin"], "resources": w.r}

    # ---- latency
    async def latency(self, x: Server, y: Server, rnd: int) -> dict:
        n, interval = self.sizes["LAT_N"], self.sizes["LAT_INTERVAL_MS"] / 1000
        sender = await x.user(f"latx{self.tag}r{rnd}")
        reader = await y.user(f"laty{self.tag}r{rnd}")
        room_id = await create_room(x, sender.token)
        await join(y, reader.token, room_id, x.server_name)
        flt = json.dumps({"room": {"rooms": [room_id], "timeline": {"limit": 100},
                                   "state": {"lazy_load_members": True}},
                          "presence": {"types": []}, "account_data": {"types": []}})
        first = await y.call("GET", "/sync", reader.token, filter=flt, timeout="0")
        since, arrivals, sent = first["next_batch"], {}, {}
        prefix = f"lat {self.tag} "
        done = asyncio.Event()

        async def poll() -> None:
            nonlocal since
            while not done.is_set():
                r = await y.call("GET", "/sync", reader.token, filter=flt, timeout="30000", since=since,
                                 set_presence="offline")
                t = now()
                since = r["next_batch"]
                room = r.get("rooms", {}).get("join", {}).get(room_id, {})
                for e in room.get("timeline", {}).get("events", []):
                    body = e.get("content", {}).get("body", "")
                    if isinstance(body, str) and body.startswith(prefix):
                        arrivals.setdefault(int(body[len(prefix):]), t)
                if len(arrivals) == n:
                    done.set()

        poller = asyncio.get_running_loop().create_task(poll())
        await asyncio.sleep(0.5)
        path = f"/rooms/{quote(room_id, safe='')}/send/m.room.message"
        sends = []
        async with Window(self, profile=y, step=f"latency-r{rnd}") as w:
            start = now()
            for i in range(n):
                sent[i] = now()
                await x.call("PUT", f"{path}/lat{i}", sender.token, {"msgtype": "m.text", "body": f"{prefix}{i}"})
                sends.append(now() - sent[i])
                await asyncio.sleep(max(0.0, start + (i + 1) * interval - now()))
            try:
                await asyncio.wait_for(done.wait(), 30)
            except asyncio.TimeoutError:
                pass
        done.set()
        poller.cancel()
        lat = [arrivals[i] - sent[i] for i in arrivals]
        return {"messages": n, "interval_ms": self.sizes["LAT_INTERVAL_MS"], "missing": n - len(lat),
                "latencies_ms": [round(1000 * (arrivals[i] - sent[i]), 1) if i in arrivals else None
                                 for i in range(n)], "send_ms_each": [round(1000 * d, 1) for d in sends],
                "latency_ms": mx.lat_summary(lat), "send_ms": mx.lat_summary(sends),
                **{f"sender_{k}": v for k, v in w.per_op(x, n, "message").items()},
                **{f"receiver_{k}": v for k, v in w.per_op(y, n, "message").items()},
                "resources": w.r}

    # ---- driver
    async def settle(self, limit_s: float = 60) -> None:
        """Wait until the four servers together use under 10% of a core (e.g. Synapse's work after a join)."""
        t0 = now()
        while now() - t0 < limit_s:
            before = sum(cpu_s(s.pid) for s in self.servers.values())
            await asyncio.sleep(1)
            if sum(cpu_s(s.pid) for s in self.servers.values()) - before < 0.1:
                return
        log(f"the servers did not settle in {limit_s:.0f} s")

    async def round(self, rnd: int) -> dict:
        s, out = self.servers, {}
        for name in self.args.scenarios:  # scenario by scenario, ruma_tx then Synapse
            for side, (target, partner) in (("ruma_tx", (s["target"], s["origin"])),
                                            ("synapse", (s["syn_a"], s["syn_b"]))):
                await self.settle()
                log(f"round {rnd + 1}: {name} {side}")
                try:
                    out.setdefault(name, {})[side] = await self.step(name, target, partner, rnd)
                except Exception as e:  # one failing side still leaves the other's figures
                    log(f"{name} {side} failed: {e!r}")
                    out.setdefault(name, {})[side] = {"error": repr(e)[:500]}
        return out

    def step(self, name: str, target: Server, partner: Server, rnd: int) -> Awaitable[dict]:
        if name == "inbound_send":
            return self.inbound_send(target, rnd)
        if name == "remote_join":
            return self.remote_join(target, rnd)
        # latency: ruma_tx ORIGIN -> TARGET; Synapse SYN_A -> SYN_B
        x, y = (partner, target) if target.kind == "ruma" else (target, partner)
        return self.latency(x, y, rnd)

    async def main(self) -> dict:
        async with aiohttp.ClientSession() as session:
            self.session = session
            for server in self.servers.values():
                server.http = mx.Http(session, server.client_url)
            self.origin_user = await self.servers["origin"].user(f"alice{self.tag}")
            rounds = []
            for rnd in range(self.args.rounds):
                rounds.append(await self.round(rnd))
            return {"rounds": rounds}


# ---------------------------------------------------------------------- tables
HEADLINES = {  # scenario: [(figure, path, direction)]
    "inbound_send": [("PDUs/s", "pdus_per_s", "↑"), ("target CPU ms/PDU", "cpu_ms_per_pdu", "↓"),
                     ("target+PG CPU ms/PDU", "cpu_plus_pg_ms_per_pdu", "↓"),
                     ("transaction until shown p50 ms", "txn_ms.p50", "↓"),
                     ("transaction answered p50 ms", "txn_answer_ms.p50", "↓"), ("refused PDUs", "refused", ""),
                     ("found in /messages", "found_in_messages", ""), ("status", "status", ""),
                     ("/messages polls in the window", "messages_polls", ""),
                     ("other load %", "resources.other_load_pct", "")],
    "remote_join": [("join s", "join_s", "↓"), ("RSS growth peak MiB", "rss_growth_peak_mib", "↓"),
                    ("RSS growth 3 s after MiB", "rss_growth_after_3s_mib", "↓"),
                    ("target CPU s", "target_cpu_s", "↓"), ("target CPU s, 3 s after", "target_cpu_s_3s_after", "↓"),
                    ("origin CPU s", "origin_cpu_s", ""), ("members seen", "members_seen_by_target", ""),
                    ("state events", "state_events", ""), ("other load %", "resources.other_load_pct", "")],
    "latency": [("p50 ms", "latency_ms.p50", "↓"), ("p99 ms", "latency_ms.p99", "↓"),
                ("max ms", "latency_ms.max", "↓"), ("missing", "missing", ""),
                ("sender CPU ms/msg", "sender_cpu_ms_per_message", "↓"),
                ("receiver CPU ms/msg", "receiver_cpu_ms_per_message", "↓"),
                ("other load %", "resources.other_load_pct", "")],
}
#: issue 11: (scenario, path, ruma_tx/Synapse must be >= or <=, bound)
TARGETS = [("inbound_send", "pdus_per_s", ">=", 5.0), ("remote_join", "join_s", "<=", 1 / 3),
           ("remote_join", "rss_growth_peak_mib", "<=", 1 / 3), ("latency", "latency_ms.p99", "<=", 1 / 3)]


def dig(d: Any, path: str) -> Any:
    for p in path.split("."):
        d = d.get(p) if isinstance(d, dict) else None
    return d


def median_of(rounds: list[dict], scenario: str, side: str, path: str) -> Any:
    values = [dig(r, f"{scenario}.{side}.{path}") for r in rounds]
    numbers = [v for v in values if isinstance(v, (int, float))]
    if numbers:
        return round(statistics.median(numbers), 3)
    return next((v for v in values if v is not None), None)


def tables(rounds: list[dict]) -> str:
    lines = ["| target (issue 11) | ruma_tx | Synapse | ruma_tx/Synapse | needed | met |", "|---|---|---|---|---|---|"]
    for scenario, path, op, bound in TARGETS:
        a, b = median_of(rounds, scenario, "ruma_tx", path), median_of(rounds, scenario, "synapse", path)
        ratio = a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
        met = "" if ratio is None else ("yes" if (ratio >= bound if op == ">=" else ratio <= bound) else "NO")
        need = f"{op} {bound:.2f}"
        lines.append(f"| {scenario} {path} | {a} | {b} | {'' if ratio is None else f'{ratio:.3f}'} | {need} | {met} |")
    lines += ["", f"| scenario | figure | ruma_tx | Synapse | ruma_tx/Synapse |", "|---|---|---|---|---|"]
    for scenario, figures in HEADLINES.items():
        for figure, path, arrow in figures:
            a, b = median_of(rounds, scenario, "ruma_tx", path), median_of(rounds, scenario, "synapse", path)
            if a is None and b is None:
                continue
            ratio = (f"{a / b:.3f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b
                     and arrow else "")
            lines.append(f"| {scenario} | {figure} {arrow} | {a} | {b} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", required=True, help="JSON: origin, target, syn_a, syn_b (see federation.sh)")
    p.add_argument("--ca", required=True, help="the CA that signed every server's certificate")
    p.add_argument("--pg-pid", type=int, help="the PostgreSQL postmaster all four servers use")
    p.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=SCENARIOS)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", required=True)
    p.add_argument("--profile-dir", help="py-spy on the ruma_tx target (receiver) in every measured window")
    p.add_argument("--py-spy", default="py-spy")
    args = p.parse_args()
    with open(args.servers) as f:
        servers = {k: Server(label=k, **v) for k, v in json.load(f).items()}
    sizes = {k: int(os.environ.get(k) or v[1 if args.smoke else 0]) for k, v in SIZES.items()}
    run = Run(args, servers, sizes)
    log(f"sizes {sizes}; results {args.out}")
    started = time.time()
    result = asyncio.run(run.main())
    markdown = tables(result["rounds"])
    print(markdown)
    doc = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "duration_s": round(time.time() - started),
           "ruma_code": os.environ.get("RUMA_CODE"), "sizes": sizes, "smoke": args.smoke,
           "scenarios": args.scenarios, "servers": {k: vars(v) | {"http": None} for k, v in servers.items()},
           "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                       "loadavg_end": os.getloadavg()}, **result}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(f"# federation bench {doc['when']} ({'smoke' if args.smoke else 'full'}, "
                f"{args.rounds} round(s), medians)\n\n{markdown}\n")


if __name__ == "__main__":
    main()
