#!/usr/bin/env python3
"""media.py - the media repository, ruma_tx and Synapse side by side, in one run.

Scenarios (authenticated media endpoints only, both servers one after the other):

  upload_1mb        UP1_N distinct 1 MB files, UP1_C uploads at a time: MB/s, latency
  download_1mb      DL1_N downloads of those files, DL1_C at a time: MB/s, latency
  upload_50mb       UP50_N distinct 50 MB files, one at a time: MB/s
  download_50mb     DL50_N downloads of them, DL50_C at a time: MB/s
  rss_200mb         one 200 MB upload streamed without a Content-Length (chunked); the
                    server's RSS sampled every 20 ms: growth over its RSS before
                    (Synapse refuses it: its max_upload_size is 50 MiB)
  thumbnail         THUMB_RUNS distinct 4000x3000 JPEG photos: the upload, the first
                    320x240 thumbnail (made then, or at upload by Synapse), and a second
                    request for it (kept): p50 of each and of upload + first thumbnail

Depends at run time on the shared benchmark kit (BENCH_KIT, default /work/shared/bench):
mxbench.py (HTTP client, UIA registration, psutil CPU monitor, percentiles) is imported
from there by path, as bench/scale.py does. Images are made with Pillow by IMAGE_PYTHON
(default: the repository's .venv). Run it through bench/media.sh, which starts ruma_tx.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

KIT = os.environ.get("BENCH_KIT", "/work/shared/bench")


def _load_kit():
    path = os.path.join(KIT, "mxbench.py")
    if not os.path.isfile(path):
        sys.exit(f"media.py: the shared benchmark kit is missing: {path} not found "
                 f"(set BENCH_KIT to its location).")
    spec = importlib.util.spec_from_file_location("mxbench", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mxbench"] = mod
    spec.loader.exec_module(mod)
    return mod


mx = _load_kit()
import aiohttp  # noqa: E402
import psutil  # noqa: E402

MB = 1_000_000
UPLOAD = "/_matrix/media/v3/upload"
MEDIA = "/_matrix/client/v1/media"
now = time.perf_counter
SCENARIOS = ("upload_1mb", "download_1mb", "upload_50mb", "download_50mb", "rss_200mb", "thumbnail")


def log(*a: Any) -> None:
    print(f"[media {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return int(v) if v else default


@dataclass
class Side:
    label: str
    url: str
    pid: int | None
    aux: list[int]
    http: Any = None
    session: Any = None
    token: str = ""
    small: list[str] = field(default_factory=list)   # mxc URIs of the 1 MB files
    large: list[str] = field(default_factory=list)   # of the 50 MB files

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def upload(side: Side, data: Any, content_type: str = "application/octet-stream",
                 length: int | None = None) -> tuple[int, Any, float]:
    """POST /upload; C{data} is bytes, or an async iterator (sent chunked). Returns (status, json, s)."""
    headers = {**side.auth(), "Content-Type": content_type}
    t0 = now()
    async with side.session.post(side.url + UPLOAD, data=data, headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=900)) as r:
        body = await r.read()
    elapsed = now() - t0
    try:
        js = json.loads(body)
    except ValueError:
        js = body[:200]
    return r.status, js, elapsed


async def fetch(side: Side, path: str, params: dict | None = None) -> tuple[int, int, float]:
    """GET a media path, reading the body in chunks; returns (status, bytes, s)."""
    t0 = now()
    size = 0
    async with side.session.get(side.url + path, headers=side.auth(), params=params,
                                timeout=aiohttp.ClientTimeout(total=900)) as r:
        async for chunk in r.content.iter_chunked(1 << 20):
            size += len(chunk)
    return r.status, size, now() - t0


def media_path(kind: str, uri: str) -> str:
    return f"{MEDIA}/{kind}/{uri[len('mxc://'):]}"


class Window:
    def __init__(self, side: Side) -> None:
        self.mon = mx.Monitor(side.pid, side.aux)

    def __enter__(self) -> "Window":
        self.s0 = self.mon.snapshot()
        self.mon.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.mon.stop()
        self.resources = self.mon.report(self.s0, self.mon.snapshot())


def per_op(resources: dict, ops: int) -> dict:
    out = {}
    if ops and "server_cpu_s" in resources:
        out["server_cpu_ms_per_op"] = round(1000 * resources["server_cpu_s"] / ops, 1)
        if "aux_cpu_s" in resources:
            out["server_plus_aux_cpu_ms_per_op"] = round(
                1000 * (resources["server_cpu_s"] + resources["aux_cpu_s"]) / ops, 1)
    return out


async def transfer_many(jobs: list, concurrency: int) -> tuple[list[float], float]:
    """Run the coroutine factories, C{concurrency} at a time; (latencies, wall s)."""
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(job):
        async with sem:
            latencies.append(await job())

    t0 = now()
    await asyncio.gather(*(one(j) for j in jobs))
    return latencies, now() - t0


def summary(total_bytes: int, latencies: list[float], wall: float, window: Window) -> dict:
    return {"ops": len(latencies), "mb_per_s": round(total_bytes / MB / wall, 1),
            "latency_ms_p50": round(1000 * statistics.median(latencies), 1),
            "latency_ms_max": round(1000 * max(latencies), 1), "wall_s": round(wall, 2),
            **per_op(window.resources, len(latencies)), "resources": window.resources}


async def scenario_upload(side: Side, size: int, count: int, concurrency: int, keep: list[str]) -> dict:
    files = [os.urandom(size) for _ in range(count)]  # distinct: no deduplication helps

    def job(data: bytes):
        async def run() -> float:
            status, js, elapsed = await upload(side, data)
            if status != 200:
                raise RuntimeError(f"{side.label}: upload answered {status} {js}")
            keep.append(js["content_uri"])
            return elapsed
        return run

    with Window(side) as window:
        latencies, wall = await transfer_many([job(f) for f in files], concurrency)
    return summary(size * count, latencies, wall, window)


async def scenario_download(side: Side, uris: list[str], size: int, count: int, concurrency: int) -> dict:
    def job(uri: str):
        async def run() -> float:
            status, got, elapsed = await fetch(side, media_path("download", uri))
            if status != 200 or got != size:
                raise RuntimeError(f"{side.label}: download answered {status} with {got} bytes")
            return elapsed
        return run

    with Window(side) as window:
        latencies, wall = await transfer_many([job(uris[i % len(uris)]) for i in range(count)], concurrency)
    return summary(size * count, latencies, wall, window)


async def scenario_rss(side: Side, size: int) -> dict:
    if not side.pid:
        return {"note": "no --pid: RSS not measured"}
    proc = psutil.Process(side.pid)
    block = os.urandom(1 << 20)

    async def body():
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            sent += len(piece)
            yield piece[:-8] + sent.to_bytes(8, "big")  # every MiB different

    samples: list[int] = []

    async def sample():
        while True:
            samples.append(proc.memory_info().rss)
            await asyncio.sleep(0.02)

    before = proc.memory_info().rss
    sampler = asyncio.get_running_loop().create_task(sample())
    try:
        status, js, elapsed = await upload(side, body())
    except aiohttp.ClientError as e:  # a server may hang up on a body over its limit
        status, js, elapsed = f"hung up: {e}", None, float("nan")
    sampler.cancel()
    after = proc.memory_info().rss
    return {"status": status, "answer": js if status != 200 else "ok", "upload_s": round(elapsed, 2),
            "rss_before_mib": round(before / 2**20, 1), "rss_max_mib": round(max(samples) / 2**20, 1),
            "rss_after_mib": round(after / 2**20, 1),
            "rss_growth_mib": round((max(samples) - before) / 2**20, 1)}


def make_photo(path: str, seed: int) -> None:
    """A 4000x3000 photo-like JPEG (gradients and noise), made with Pillow by IMAGE_PYTHON."""
    python = os.environ.get("IMAGE_PYTHON") or os.path.join(os.path.dirname(__file__), "..", ".venv", "bin",
                                                            "python")
    code = (
        "import sys\nfrom PIL import Image, ImageChops\n"
        "w, h = 4000, 3000\nseed = int(sys.argv[2])\n"
        "r = Image.linear_gradient('L').resize((w, h))\n"
        "g = Image.radial_gradient('L').resize((w, h))\n"
        "b = ImageChops.add(Image.effect_noise((w, h), 40), r.rotate(90).resize((w, h)), 2.0, seed % 50)\n"
        "Image.merge('RGB', (r, g, b)).save(sys.argv[1], 'JPEG', quality=90)\n"
    )
    subprocess.run([python, "-c", code, path, str(seed)], check=True, timeout=300)


async def scenario_thumbnail(side: Side, runs: int, photos: list[bytes]) -> dict:
    uploads, firsts, seconds, totals = [], [], [], []
    with Window(side) as window:
        for i in range(runs):
            status, js, up = await upload(side, photos[i], "image/jpeg")
            if status != 200:
                raise RuntimeError(f"{side.label}: photo upload answered {status} {js}")
            params = {"width": "320", "height": "240", "method": "scale"}
            path = media_path("thumbnail", js["content_uri"])
            s1, n1, first = await fetch(side, path, params)
            s2, n2, second = await fetch(side, path, params)
            if s1 != 200 or s2 != 200 or n1 == 0:
                raise RuntimeError(f"{side.label}: thumbnail answered {s1}/{s2}")
            uploads.append(up), firsts.append(first), seconds.append(second), totals.append(up + first)
    ms = lambda xs: round(1000 * statistics.median(xs), 1)  # noqa: E731
    return {"runs": runs, "photo_mb": round(len(photos[0]) / MB, 2), "upload_ms_p50": ms(uploads),
            "first_thumbnail_ms_p50": ms(firsts), "upload_plus_first_thumbnail_ms_p50": ms(totals),
            "kept_thumbnail_ms_p50": ms(seconds), **per_op(window.resources, runs),
            "resources": window.resources}


async def run_side(side: Side, scenarios: list[str], photos: list[bytes]) -> dict:
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        side.session = session
        side.http = mx.Http(session, side.url)
        user = await mx.UIARegistrar().create(side.http, f"media{os.getpid()}{int(time.time())}", "bench-Pw-1")
        side.token = user.token
        for name in scenarios:
            log(f"{side.label}: {name}")
            if name == "upload_1mb":
                results[name] = await scenario_upload(side, MB, env_int("UP1_N", 40), env_int("UP1_C", 4),
                                                      side.small)
            elif name == "download_1mb":
                if not side.small:
                    await scenario_upload(side, MB, 10, 4, side.small)
                results[name] = await scenario_download(side, side.small, MB, env_int("DL1_N", 200),
                                                        env_int("DL1_C", 4))
            elif name == "upload_50mb":
                results[name] = await scenario_upload(side, 50 * MB, env_int("UP50_N", 4), 1, side.large)
            elif name == "download_50mb":
                if not side.large:
                    await scenario_upload(side, 50 * MB, 2, 1, side.large)
                results[name] = await scenario_download(side, side.large, 50 * MB, env_int("DL50_N", 8),
                                                        env_int("DL50_C", 2))
            elif name == "rss_200mb":
                results[name] = await scenario_rss(side, 200 * MB)
            elif name == "thumbnail":
                results[name] = await scenario_thumbnail(side, len(photos), photos)
            await asyncio.sleep(float(os.environ.get("PAUSE_S", "2")))
    return results


HEADLINES = {
    "upload_1mb": ["mb_per_s", "latency_ms_p50", "server_cpu_ms_per_op"],
    "download_1mb": ["mb_per_s", "latency_ms_p50", "server_cpu_ms_per_op"],
    "upload_50mb": ["mb_per_s", "latency_ms_p50", "server_cpu_ms_per_op"],
    "download_50mb": ["mb_per_s", "latency_ms_p50", "server_cpu_ms_per_op"],
    "rss_200mb": ["status", "rss_growth_mib", "upload_s"],
    "thumbnail": ["upload_plus_first_thumbnail_ms_p50", "upload_ms_p50", "first_thumbnail_ms_p50",
                  "kept_thumbnail_ms_p50", "server_cpu_ms_per_op"],
}


def table(a: Side, b: Side, results: dict) -> str:
    lines = [f"| scenario | figure | {a.label} | {b.label} | {a.label}/{b.label} |", "|---|---|---|---|---|"]
    for name, figures in HEADLINES.items():
        ra, rb = results.get(a.label, {}).get(name), results.get(b.label, {}).get(name)
        if ra is None and rb is None:
            continue
        for figure in figures:
            va, vb = (ra or {}).get(figure), (rb or {}).get(figure)
            ratio = (f"{va / vb:.2f}" if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and vb
                     else "")
            lines.append(f"| {name} | {figure} | {va} | {vb} | {ratio} |")
        for label, r in ((a.label, ra), (b.label, rb)):
            other = (r or {}).get("resources", {}).get("other_procs_cpu_pct")
            if other is not None:
                lines.append(f"| {name} | other load % ({label}) | {other} | | |")
    return "\n".join(lines)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for side in ("a", "b"):
        p.add_argument(f"--{side}-url", required=True)
        p.add_argument(f"--{side}-label", default=side.upper())
        p.add_argument(f"--{side}-pid", type=int)
        p.add_argument(f"--{side}-aux-pid", type=int, nargs="*", default=[])
    p.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=SCENARIOS)
    p.add_argument("--out", help="JSON results (the table goes next to it as .md)")
    args = p.parse_args()
    sides = [Side(args.a_label, args.a_url, args.a_pid, args.a_aux_pid),
             Side(args.b_label, args.b_url, args.b_pid, args.b_aux_pid)]
    photos: list[bytes] = []
    if "thumbnail" in args.scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(env_int("THUMB_RUNS", 3)):
                path = os.path.join(tmp, f"photo{i}.jpg")
                make_photo(path, i)
                with open(path, "rb") as f:
                    photos.append(f.read())
    results: dict[str, Any] = {}
    for name in args.scenarios:  # scenario by scenario, A then B, so both see the same background load
        for side in sides:
            side_results = await run_side(side, [name], photos)
            results.setdefault(side.label, {}).update(side_results)
    markdown = table(sides[0], sides[1], results)
    print(markdown)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"when": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}, f, indent=1)
        with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
            f.write(markdown + "\n")


if __name__ == "__main__":
    asyncio.run(main())
