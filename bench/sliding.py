#!/usr/bin/env python3
"""sliding.py - sliding sync as Element X uses it: ruma_tx and Synapse side by side.

Both servers on the unstable path POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync
(query parameters pos and timeout), with one request body: Element X's room list (one list,
range [0, 19], timeline_limit 1, its required_state, no spaces) and the extensions it enables
(to_device, e2ee, account_data, receipts, typing).

  ss_first        SS_FIRST_RUNS fresh connections (a new conn_id, no pos), one after the
                  other: latency p50/p90, CPU per response, response bytes; 20 rooms each
  ss_incremental  one connection; SS_INC_N times: a message into a room not yet seen on the
                  connection (so it moves to the top of the list), then the incremental
                  request (pos, timeout=0): its latency and CPU (measured around that request
                  only); the response must carry the room and the message
  ss_wake         SS_WAKE_K connections long-poll (timeout 30000) while SS_WAKE_M messages go
                  into one room at SS_WAKE_RATE msg/s: delivery latency per (message,
                  connection), and CPU per wake-up = (CPU of the phase - idle CPU - CPU of the
                  same sends with nobody polling) / long-poll responses answered

The account is the one scale.py's initial_sync scenario seeded (IS_ROOMS rooms x IS_MSGS
messages, in $BENCH_HOME/scale/state-<label>[-smoke].json). This driver seeds nothing: without
that account a side reports an error (seed it with SCENARIOS=initial_sync SEED_ONLY=1
bench/scale.sh). Its messages go into that account's rooms (SS_INC_N + 2 x SS_WAKE_M a run).
A server whose /versions does not list org.matrix.simplified_msc3575 is reported "unsupported".

Run it through bench/scale.sh: DRIVER=sliding bench/scale.sh. It imports scale.py by path and
plugs its scenarios into scale.py's run loop, CPU windows and tables.
"""
from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale as sc  # noqa: E402  (bench/scale.py, next to this file; it loads the kit)
import aiohttp  # noqa: E402

mx = sc.mx

now = time.perf_counter
log = sc.log
FEATURE = "org.matrix.simplified_msc3575"
SS_PATH = f"/_matrix/client/unstable/{FEATURE}/sync"
LIST = "all_rooms"
#: Element X's room list (matrix-rust-sdk's room list service)
REQUIRED_STATE = [["m.room.encryption", ""], ["m.room.member", "$LAZY"],
                  ["m.room.member", "$ME"], ["m.room.name", ""], ["m.room.avatar", ""],
                  ["m.room.canonical_alias", ""], ["m.room.topic", ""],
                  ["m.room.join_rules", ""], ["m.room.power_levels", ""], ["m.room.create", ""],
                  ["m.room.history_visibility", ""], ["m.room.tombstone", ""],
                  ["m.call.member", "*"]]
RANGE_END = 19
POLL_TIMEOUT_MS = 30000


def request_body(conn_id: str, to_device_since: str | None = None) -> dict:
    """The whole request, sent again in full on every request (nothing is sticky)."""
    to_device: dict[str, Any] = {"enabled": True}
    if to_device_since:
        to_device["since"] = to_device_since
    return {"conn_id": conn_id,
            "lists": {LIST: {"ranges": [[0, RANGE_END]], "timeline_limit": 1,
                             "required_state": REQUIRED_STATE,
                             "filters": {"not_room_types": ["m.space"]}}},
            "extensions": {"to_device": to_device, "e2ee": {"enabled": True},
                           "account_data": {"enabled": True}, "receipts": {"enabled": True},
                           "typing": {"enabled": True}}}


@dataclass
class SsSizes:
    first_runs: int
    inc_n: int
    wake_k: int
    wake_m: int
    wake_rate: float
    idle_s: float

    @classmethod
    def from_env(cls, smoke: bool) -> "SsSizes":
        return cls(first_runs=sc.env_int("SS_FIRST_RUNS", 5 if smoke else 20),
                   inc_n=sc.env_int("SS_INC_N", 5 if smoke else 30),
                   wake_k=sc.env_int("SS_WAKE_K", 5 if smoke else 20),
                   wake_m=sc.env_int("SS_WAKE_M", 5 if smoke else 30),
                   wake_rate=sc.env_float("SS_WAKE_RATE", 1.0),
                   idle_s=sc.env_float("SS_IDLE_S", 5.0))


class Conn:
    """One sliding sync connection of the account: its conn_id, pos and to-device token."""

    def __init__(self, side: Any, token: str, conn_id: str) -> None:
        self.side, self.token, self.conn_id = side, token, conn_id
        self.pos: str | None = None
        self.since: str | None = None
        self.seen: set[str] = set()

    async def post(self, timeout_ms: int | None = None,
                   http_timeout: float = 120.0) -> tuple[int, Any, int]:
        params = {}
        if self.pos is not None:
            params["pos"] = self.pos
        if timeout_ms is not None:
            params["timeout"] = str(timeout_ms)
        st, js, nbytes = await self.side.http.req(
            "POST", SS_PATH, token=self.token, body=request_body(self.conn_id, self.since),
            params=params or None, timeout=http_timeout)
        if st == 200 and isinstance(js, dict):
            self.pos = js.get("pos", self.pos)
            self.since = ((js.get("extensions") or {}).get("to_device") or {}).get(
                "next_batch", self.since)
            self.seen.update((js.get("rooms") or {}).keys())
        return st, js, nbytes

    async def call(self, timeout_ms: int | None = None) -> dict:
        """Setup request: anything but 200 with a pos is an error."""
        st, js, _ = await self.post(timeout_ms)
        if st != 200 or not isinstance(js, dict) or "pos" not in js:
            raise mx.HttpError(st, js, f"POST {SS_PATH} (pos {self.pos})")
        return js


class Tally:
    """Latencies, sizes and failures of the measured requests of one scenario."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.sizes: list[int] = []
        self.errors: dict[str, int] = {}
        self.wrong: list[str] = []

    async def timed(self, what: str, conn: Conn, **post_args: Any) -> dict | None:
        """conn.post(), timed: the response, or None (counted as an error)."""
        t0 = now()
        try:
            st, js, nbytes = await conn.post(**post_args)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            count(self.errors, type(e).__name__)
            return None
        dt = now() - t0
        if st != 200 or not isinstance(js, dict):
            count(self.errors, f"HTTP {st}")
            self.wrong.append(f"{what}: HTTP {st}: {excerpt(js)}")
            return None
        self.times.append(dt)
        self.sizes.append(nbytes)
        return js

    def result(self) -> dict:
        lat = mx.lat_summary(self.times)
        v = mx.pct(sorted(self.times), 90)
        lat["p90"] = None if v is None else round(v * 1000.0, 2)
        return {"runs_ms": [round(t * 1000, 1) for t in self.times], "latency_ms": lat,
                "response_bytes": statistics.median(self.sizes) if self.sizes else None,
                "errors": self.errors, "wrong": self.wrong[:5], "wrong_count": len(self.wrong)}

    def ok(self, n: int) -> bool:
        return len(self.times) == n and not self.wrong and not self.errors


def excerpt(js: Any, n: int = 400) -> str:
    return str(js)[:n]


def count(errors: dict[str, int], key: str) -> None:
    errors[key] = errors.get(key, 0) + 1


def timeline_ids(room: dict) -> list[str]:
    return [ev.get("event_id") for ev in room.get("timeline") or [] if isinstance(ev, dict)]


def cpu_excess(rep: dict, idle: dict, key: str, minus: float = 0.0) -> float | None:
    """CPU seconds of `key` in window `rep` above the idle rate of `idle`, minus `minus`."""
    if key not in rep or key not in idle or not idle.get("wall_s"):
        return None
    return rep[key] - idle[key] / idle["wall_s"] * rep["wall_s"] - minus


# ------------------------------------------------------------------------- the account
async def check_account(side, idx: int, sz, scenarios: list[str], cap_s: float) -> dict:
    """The account of scale.py's initial_sync (never seeded here), and whether the server
    speaks the unstable sliding sync."""
    st, js, _ = await side.http.req("GET", "/_matrix/client/versions", timeout=10)
    out: dict[str, Any] = {"supported": st == 200 and bool(
        ((js or {}).get("unstable_features") or {}).get(FEATURE))}
    key = f"isync:{sz.is_rooms}x{sz.is_msgs}"
    item = side.state.items.get(key)
    how = (f"seed it with: {'SMOKE=1 ' if '-smoke' in side.state.path else ''}"
           f"SCENARIOS=initial_sync SEED_ONLY=1 bench/scale.sh")
    if not (item and item.get("done")):
        out["error"] = f"{key} is not seeded in {side.state.path}; {how}"
    elif not (await sc.refresh_users(side, [item["user"]], now() + 120, 1)
              and await sc.room_ok(side, item["user"]["token"], item["rooms"][-1])):
        out["error"] = f"{key} in {side.state.path} is stale (server data reset?); {how}"
    else:
        side.state.save()  # a token refreshed by a new login
        out["account"] = item
    if "error" in out:
        log(f"{side.label}: {out['error']}")
    log(f"{side.label}: sliding sync {'supported' if out['supported'] else 'NOT supported'}")
    return out


def unusable(side, scenario: str, sd: dict) -> dict | None:
    """A record saying why this side cannot run the scenario, or None."""
    if not sd["supported"]:
        return sc.record(side, scenario, "", {}, {"error": f"{FEATURE} is not in /versions' "
                                                 "unstable_features"}, {}, "unsupported")
    if "error" in sd:
        return sc.record(side, scenario, "", {}, {"error": sd["error"]}, {}, "error")
    return None


# ------------------------------------------------------------------------- measured
async def m_first(side, ss: SsSizes, sd: dict, runid: str, cap_s: float) -> dict:
    acct = sd["account"]
    want = min(RANGE_END + 1, len(acct["rooms"]))
    tally = Tally()
    nrooms, counts, tl_events, rs_events = [], [], [], []
    t_end = now() + cap_s
    w = sc.Window(side).start()
    for i in range(ss.first_runs):
        if now() > t_end:
            break
        conn = Conn(side, acct["user"]["token"], f"first-{runid}-{i}")
        js = await tally.timed(f"run {i}", conn, http_timeout=max(10.0, t_end - now()))
        if js is None:
            continue
        rooms = js.get("rooms") or {}
        nrooms.append(len(rooms))
        counts.append(((js.get("lists") or {}).get(LIST) or {}).get("count"))
        tl_events.append(sum(len(r.get("timeline") or []) for r in rooms.values()))
        rs_events.append(sum(len(r.get("required_state") or []) for r in rooms.values()))
        if len(rooms) != want:
            tally.wrong.append(f"run {i}: {len(rooms)} rooms, not {want}; lists: "
                               f"{excerpt(js.get('lists'), 200)}")
    res_r = w.stop()
    res = tally.result()
    res.update(rooms_in_response=min(nrooms) if nrooms else None,
               list_count=counts[-1] if counts else None,
               timeline_events=tl_events[-1] if tl_events else None,
               required_state_events=rs_events[-1] if rs_events else None)
    sc.per_op(res, res_r, len(tally.times), "response")
    return sc.record(side, "ss_first", "",
                     {"runs": ss.first_runs, "body": request_body("first-<runid>-<i>")},
                     res, res_r, "ok" if tally.ok(ss.first_runs) else "wrong")


async def m_incremental(side, ss: SsSizes, sd: dict, runid: str, cap_s: float) -> dict:
    acct = sd["account"]
    user = sc.d2u(acct["user"])
    conn = Conn(side, user.token, f"inc-{runid}")
    await conn.call()
    for _ in range(3):  # drain what the first response left (e.g. to-device, receipts)
        js = await conn.call(timeout_ms=0)
        if not js.get("rooms"):
            break
    order = list(acct["rooms"])
    random.Random(runid).shuffle(order)
    mon = mx.Monitor(side.pid, side.aux)
    tally = Tally()
    nrooms = []
    cpu = {"server_cpu_s": 0.0, "aux_cpu_s": 0.0}
    t_end = now() + cap_s
    w = sc.Window(side).start()
    for i in range(ss.inc_n):
        if now() > t_end:
            break
        room = next((r for r in order if r not in conn.seen), None)
        if room is None:
            tally.wrong.append("every room was seen on the connection: none left outside the list")
            break
        conn.seen.add(room)
        ev = await sc.send_call(side, user, room, f"ss{runid}inc{i}", {
            "msgtype": "m.text", "body": f"sliding incremental {i}", "ss_run": runid, "ss_seq": i})
        await asyncio.sleep(0.3)  # the send's trailing work is not the request's
        s0 = mon.snapshot()
        js = await tally.timed(f"step {i}", conn, timeout_ms=0, http_timeout=60.0)
        r = mon.report(s0, mon.snapshot())
        if js is None:
            continue
        for k in cpu:
            cpu[k] += r.get(k, 0.0)
        rooms = js.get("rooms") or {}
        nrooms.append(len(rooms))
        if room not in rooms:
            tally.wrong.append(f"step {i}: {room} (new message {ev}) missing; rooms: "
                               f"{list(rooms)[:5]}")
        elif ev not in timeline_ids(rooms[room]):
            tally.wrong.append(f"step {i}: {room} without its new message {ev}: "
                               f"{excerpt(rooms[room], 300)}")
    res_r = w.stop()
    res = tally.result()
    res["rooms_in_response"] = statistics.median(nrooms) if nrooms else None
    if side.pid:  # CPU around the incremental requests only (not the sends)
        sc.per_op(res, cpu if side.aux else {"server_cpu_s": cpu["server_cpu_s"]},
                  len(tally.times), "response")
    return sc.record(side, "ss_incremental", "",
                     {"steps": ss.inc_n, "timeout_ms": 0, "settle_after_send_s": 0.3},
                     res, res_r, "ok" if tally.ok(ss.inc_n) else "wrong")


async def m_wake(side, ss: SsSizes, sd: dict, runid: str, cap_s: float) -> dict:
    acct = sd["account"]
    user = sc.d2u(acct["user"])
    room = acct["rooms"][0]
    k, m, rate = ss.wake_k, ss.wake_m, ss.wake_rate
    mon = mx.Monitor(side.pid, side.aux)

    async def sends(tag: str, on_start=None) -> tuple[list[float], dict[str, int]]:
        lat: list[float] = []
        errs: dict[str, int] = {}

        async def one(i: int) -> None:
            t = now()
            if on_start:
                on_start(i, t)
            try:
                st, _, _ = await sc.send(side, user, room, f"ss{runid}{tag}{i}", {
                    "msgtype": "m.text", "body": f"sliding wake {tag} {i}", "ss_run": runid,
                    "ss_seq": i, "ss_tag": tag})
                if st == 200:
                    lat.append(now() - t)
                else:
                    count(errs, f"HTTP {st}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                count(errs, type(e).__name__)
        await sc.open_loop(m, rate, one)
        return lat, errs

    # baselines: the server idle, then the same sends with nobody polling
    quiet = await sc.wait_quiet(side, 60.0)
    s0 = mon.snapshot()
    await asyncio.sleep(ss.idle_s)
    idle = mon.report(s0, mon.snapshot())
    s0 = mon.snapshot()
    _, base_errs = await sends("b")
    await asyncio.sleep(1.0)
    sends_only = mon.report(s0, mon.snapshot())
    send_cost = {key: cpu_excess(sends_only, idle, key) for key in ("server_cpu_s", "aux_cpu_s")}

    # K connections, each past its first response
    conns = [Conn(side, user.token, f"wake-{runid}-{j}") for j in range(k)]
    for c in conns:
        await c.call()
        await c.call(timeout_ms=0)
    send_start: dict[int, float] = {}
    deliveries: list[tuple[int, int, float]] = []
    counters = {"responses": 0, "responses_with_message": 0}
    polls = Tally()
    parked = [False] * k
    phase = {"on": False, "grace_end": float("inf")}

    async def poller(j: int, c: Conn) -> None:
        got: set[int] = set()
        while len(got) < m and now() < phase["grace_end"]:
            parked[j] = True
            js = await polls.timed(f"conn {j}", c, timeout_ms=POLL_TIMEOUT_MS, http_timeout=90.0)
            t = now()
            if js is None:
                await asyncio.sleep(0.2)
                continue
            if not phase["on"]:
                continue
            counters["responses"] += 1
            new = [(ev.get("content") or {}).get("ss_seq")
                   for ev in ((js.get("rooms") or {}).get(room) or {}).get("timeline") or []
                   if (ev.get("content") or {}).get("ss_run") == runid
                   and (ev.get("content") or {}).get("ss_tag") == "w"]
            new = [s for s in new if isinstance(s, int) and s not in got]
            if new:
                counters["responses_with_message"] += 1
            for s in new:
                got.add(s)
                deliveries.append((j, s, t))

    tasks = [asyncio.ensure_future(poller(j, c)) for j, c in enumerate(conns)]
    t_wait = now()
    while not all(parked) and now() - t_wait < 120:
        await asyncio.sleep(0.05)
    await asyncio.sleep(3.0)  # every long-poll has reached the server
    quiet2 = await sc.wait_quiet(side, 60.0)
    w = sc.Window(side).start()
    phase["on"] = True
    send_lat, send_errs = await sends("w", on_start=lambda i, t: send_start.__setitem__(i, t))
    phase["grace_end"] = now() + max(30.0, 2.0 * m / rate)
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, phase["grace_end"] - now()) + 5)
    res_r = w.stop()
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)

    lat = [t - send_start[s] for _, s, t in deliveries if s in send_start]
    expected = len(send_start) * k
    res: dict[str, Any] = {
        "connections": k, "messages": m, "deliveries": len(deliveries),
        "deliveries_missing": expected - len(deliveries),
        "delivery_latency_ms": mx.lat_summary(lat), "wakeups": counters["responses"],
        "wakeups_with_message": counters["responses_with_message"],
        "poll_errors": polls.errors, "pollers_unfinished": len(pending),
        "send_latency_ms": mx.lat_summary(send_lat), "send_errors": send_errs,
        "baseline_send_errors": base_errs, "wrong": polls.wrong[:5],
        "idle": {key: idle.get(key) for key in ("wall_s", "server_cpu_s", "aux_cpu_s")},
        "sends_only": {key: sends_only.get(key) for key in ("wall_s", "server_cpu_s",
                                                            "aux_cpu_s")},
        "settle": {"before_baselines": quiet, "before_phase": quiet2}}
    if "server_cpu_s" in res_r:
        res["idle_server_cpu_pct"] = round(100 * idle["server_cpu_s"] / idle["wall_s"], 2)
        res["send_server_cpu_ms"] = round(1000 * send_cost["server_cpu_s"] / m, 2)
        res["phase_server_cpu_ms_per_wakeup_raw"] = round(
            1000 * res_r["server_cpu_s"] / max(1, counters["responses"]), 3)
        wake = {key: cpu_excess(res_r, idle, key, send_cost[key])
                for key in ("server_cpu_s", "aux_cpu_s") if send_cost.get(key) is not None}
        sc.per_op(res, {key: v for key, v in wake.items() if v is not None},
                  counters["responses"], "wake-up")
    ok = res["deliveries_missing"] == 0 and not send_errs and not polls.errors
    return sc.record(side, "ss_wake", "",
                     {"connections": k, "messages": m, "rate_per_s": rate,
                      "poll_timeout_ms": POLL_TIMEOUT_MS, "idle_s": ss.idle_s,
                      "cpu_per_wakeup": "(phase - idle rate x phase - same sends, no pollers) "
                                        "/ long-poll responses"},
                     res, res_r, "ok" if ok else "incomplete")


# ------------------------------------------------------------------------- the driver
def variant(name: str, ss: SsSizes, sz) -> str:
    """The row title's detail: the same for both sides, whether a side ran or not."""
    return {"ss_first": f"{sz.is_rooms} rooms, list [0, {RANGE_END}]",
            "ss_incremental": f"{sz.is_rooms} rooms, timeout=0",
            "ss_wake": f"{sz.is_rooms} rooms, {ss.wake_k} connections, {ss.wake_m} msgs @ "
                       f"{ss.wake_rate:g}/s"}[name]


async def run_step(name: str, side, sd: dict, ss: SsSizes, sz, runid: str, cap_s: float) -> dict:
    rec = unusable(side, name, sd) or await MEASURES[name](side, ss, sd, runid, cap_s)
    rec["variant"] = variant(name, ss, sz)
    return rec


def steps(sz, scenarios: list[str], args, runid: str, rnd: int) -> list[tuple[str, Any]]:
    ss = SsSizes.from_env(args.smoke)
    return [(name, lambda s, sd, name=name: run_step(name, s, sd, ss, sz, f"{runid}{rnd}",
                                                     args.cap_s))
            for name in TITLES if name in scenarios]


#: the issue's targets: (scenario, what, figure compared, unit)
TARGETS = [("ss_first", "first response of a 20-room list, p50", "result.latency_ms.p50", "ms"),
           ("ss_incremental", "incremental response after one new message, p50",
            "result.latency_ms.p50", "ms"),
           ("ss_wake", "server CPU per long-poll wake-up", "result.server_cpu_ms_per_op", "ms")]


def targets(runs: list[dict], labels: list[str], sz) -> str:
    a, b = labels
    groups = sc.grouped(runs, labels)
    rows = ["| target | measured | met |", "|---|---|---|"]
    for scen, what, path, unit in TARGETS:
        for (s, variant), grp in groups.items():
            if s != scen:
                continue
            va, vb = sc.value(grp, a, path), sc.value(grp, b, path)
            ca = sc.value(grp, a, "result.server_plus_aux_cpu_ms_per_op")
            cb = sc.value(grp, b, "result.server_plus_aux_cpu_ms_per_op")
            ok = None if not (sc.is_num(va) and sc.is_num(vb)) else va <= vb / 5
            verdict = "–" if ok is None else ("yes" if ok else "**no**")
            rows.append(f"| {what} ≤ 1/5 of {b} ({variant}) | {sc.fmt(va)} vs {sc.fmt(vb)} {unit}"
                        f" = {sc.ratio(va, vb)}; server+PostgreSQL CPU {sc.fmt(ca)} vs "
                        f"{sc.fmt(cb)} ms = {sc.ratio(ca, cb)} | {verdict} |")
    return "\n".join(rows)


DOWN = sc.DOWN
TITLES = {"ss_first": "S1. first response of a 20-room list",
          "ss_incremental": "S2. incremental response after one new message",
          "ss_wake": "S3. long-poll wake-ups"}
LATENCY = [("p50 ms" + DOWN, "result.latency_ms.p50"), ("p90 ms" + DOWN, "result.latency_ms.p90"),
           ("runs ms", "result.runs_ms"), ("response bytes", "result.response_bytes"),
           ("rooms in response", "result.rooms_in_response")]
METRICS = {
    "ss_first": LATENCY + [("list count", "result.list_count"),
                           ("timeline events", "result.timeline_events"),
                           ("required_state events", "result.required_state_events")],
    "ss_incremental": LATENCY + [("wrong responses" + DOWN, "result.wrong_count")],
    "ss_wake": [("delivery p50 ms" + DOWN, "result.delivery_latency_ms.p50"),
                ("delivery p99 ms" + DOWN, "result.delivery_latency_ms.p99"),
                ("missing deliveries" + DOWN, "result.deliveries_missing"),
                ("wake-ups answered", "result.wakeups"),
                ("wake-ups carrying a message", "result.wakeups_with_message"),
                ("phase CPU ms/wake-up, raw" + DOWN, "result.phase_server_cpu_ms_per_wakeup_raw"),
                ("idle server CPU %", "result.idle_server_cpu_pct"),
                ("send CPU ms/msg (no pollers)", "result.send_server_cpu_ms"),
                ("send p50 ms" + DOWN, "result.send_latency_ms.p50")],
}
MEASURES = {"ss_first": m_first, "ss_incremental": m_incremental, "ss_wake": m_wake}
DRIVER = sc.Driver(title="Sliding sync benchmark", titles=TITLES, metrics=METRICS,
                   seed=check_account, steps=steps, targets=targets,
                   no_ratio=frozenset({"list count", "timeline events", "required_state events",
                                       "wake-ups answered", "wake-ups carrying a message",
                                       "idle server CPU %", "wrong responses" + DOWN}))

if __name__ == "__main__":
    sc.main(DRIVER, __doc__)
