"""`make bench`: every configuration side by side in one run, on this machine.

    python -m bench.run [--duration 8] [--quick] [--out bench/results]

Starts what each configuration needs (an imgclf local cluster, the prototype-style server,
Triton when its environment exists), drives it with imgclf_tools.loadgen on 127.0.0.1, stops it,
and writes bench/results/<date>-<machine>.{json,md} and PNG plots.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from bench import clients, inprocess, report
from bench.processes import ImgclfServer, PrototypeServer, serve_config
from bench.triton import TritonBench
from imgclf_tools.loadgen import LoadResult, run_load
from imgclf_tools.processes import memory_mb

ROOT = Path(__file__).parents[1]
IMAGES = [
    (ROOT / "tests/data/images" / n).read_bytes()
    for n in ("kitten_small.jpg", "tiger.jpg", "strawberry.jpg")
]
THREADS = 2  # the server's replicas get 2 CPU slots in all: 2 replicas x 1 torch thread
CONCURRENCY = (1, 4, 16, 64)
BATCHES = (8, 32, 128)
BATCH_CONCURRENCY = 4  # the client library keeps 4 ClassifyBatch calls in flight by default
# The other setting worth trying on the 2-vCPU machines: the in-process limit peaks at batch 4.
# (More torch threads per replica than CPU slots was far worse: OpenMP threads of two busy
# replicas fight over two cores; see BENCHMARKS.md.)
TUNED_BATCHING = {"max_batch_size": 4, "batch_wait_timeout_s": 0.0}
# Ray Serve's throughput-optimized mode: gRPC between deployments, user code on the replica's
# event loop, GC frozen after start-up, buffered request logs.
TUNED_ENV = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "hostname": platform.node(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": version("torch"),
        "ray": version("ray"),
        "grpcio": version("grpcio"),
    }


async def imgclf_loads(
    server: ImgclfServer, setting: str, duration: float
) -> tuple[list[LoadResult], dict]:
    results, histograms = [], {}
    async with grpc.aio.insecure_channel(server.cluster.grpc_target) as channel:
        scenarios = [
            (f"Classify c={c}", c, 1, clients.imgclf_classify(channel, IMAGES)) for c in CONCURRENCY
        ]
        scenarios += [
            (
                f"ClassifyBatch({n}) c={BATCH_CONCURRENCY}",
                BATCH_CONCURRENCY,
                n,
                clients.imgclf_batch(channel, IMAGES, n),
            )
            for n in BATCHES
        ]
        for scenario, concurrency, per_call, call in scenarios:
            before = server.batch_sizes()
            results.append(
                await run_load(
                    f"imgclf {setting}",
                    scenario,
                    call,
                    concurrency=concurrency,
                    images_per_call=per_call,
                    duration_s=duration,
                )
            )
            await asyncio.sleep(2.5)  # two metrics export intervals
            after = server.batch_sizes()
            histograms[scenario] = {
                str(k): after.get(k, 0) - before.get(k, 0) for k in sorted(after)
            }
            print(results[-1].line(), flush=True)
    return results, histograms


async def prototype_loads(server: PrototypeServer, duration: float) -> list[LoadResult]:
    results = []
    async with aiohttp.ClientSession() as session:
        scenarios = [
            (
                f"POST /model c={c}",
                c,
                1,
                clients.prototype_post(session, server.url("/efficientnet-lite0"), IMAGES, 1),
            )
            for c in CONCURRENCY
        ]
        scenarios += [
            (
                f"POST /model_batch({n}) c={BATCH_CONCURRENCY}",
                BATCH_CONCURRENCY,
                n,
                clients.prototype_post(session, server.url("/efficientnet-lite0_batch"), IMAGES, n),
            )
            for n in BATCHES[:2]
        ]
        for scenario, concurrency, per_call, call in scenarios:
            results.append(
                await run_load(
                    "prototype",
                    scenario,
                    call,
                    concurrency=concurrency,
                    images_per_call=per_call,
                    duration_s=duration,
                )
            )
            print(results[-1].line(), flush=True)
    return results


def memory_run(workdir: Path, replicas: int) -> dict[str, Any]:
    """Cold start, then RSS/PSS of the whole local cluster after 5 s of Classify at c=16."""
    server = ImgclfServer.start(workdir, serve_config(replicas, 2 / replicas), num_cpus=2)
    try:

        async def warm() -> None:
            async with grpc.aio.insecure_channel(server.cluster.grpc_target) as channel:
                call = clients.imgclf_classify(channel, IMAGES)
                await run_load(
                    "imgclf", "warm", call, concurrency=16, images_per_call=1, duration_s=5
                )

        asyncio.run(warm())
        return {
            "system": "imgclf",
            "replicas": replicas,
            "cold_start_s": server.cold_start_s,
            **memory_mb(server.pids()),
        }
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds recorded per point")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--skip-memory", action="store_true", help="skip the 1/2/4-replica memory runs"
    )
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    results: dict[str, Any] = {
        "started": started,
        "machine": machine(),
        "duration_s": args.duration,
        "tuned": {"user_config": TUNED_BATCHING, "env": TUNED_ENV},
        "loads": [],
        "inprocess": [],
        "memory": [],
        "batch_histograms": {},
        "notes": [],
    }

    print("in-process limit", flush=True)
    # batch 1 with 1 thread too: what one replica (1 CPU slot) does with one image
    for batch, threads in ((1, THREADS), (4, THREADS), (8, THREADS), (1, 1)):
        measured = inprocess.measure(IMAGES, batch, threads, args.duration)
        results["inprocess"].append(measured.as_dict())
        print(f"  batch {batch}, {threads} threads: {measured.images_per_s} img/s", flush=True)

    with tempfile.TemporaryDirectory(prefix="imgclf-bench-") as tmp:
        print("imgclf (2 replicas x 1 CPU), default settings", flush=True)
        server = ImgclfServer.start(Path(tmp), serve_config(2, 1), num_cpus=2)
        try:
            results["cold_start_s"] = {"imgclf": server.cold_start_s}
            loads, histograms = asyncio.run(imgclf_loads(server, "default", args.duration))
            results["loads"] += [r.as_dict() for r in loads]
            results["batch_histograms"]["default"] = histograms
            results["memory"].append(
                {"system": "imgclf", "replicas": 2, **memory_mb(server.pids())}
            )
        finally:
            server.stop()

        print(f"imgclf tuned: {TUNED_BATCHING}, {TUNED_ENV}", flush=True)
        server = ImgclfServer.start(
            Path(tmp), serve_config(2, 1, TUNED_BATCHING), num_cpus=2, extra_env=TUNED_ENV
        )
        try:
            loads, histograms = asyncio.run(imgclf_loads(server, "tuned", args.duration))
            results["loads"] += [r.as_dict() for r in loads]
            results["batch_histograms"]["tuned"] = histograms
        finally:
            server.stop()

        if not args.skip_memory:
            for replicas in (1, 4):
                print(f"imgclf memory, {replicas} replica(s)", flush=True)
                results["memory"].append(memory_run(Path(tmp), replicas))

    print("prototype-style FastAPI", flush=True)
    proto = PrototypeServer.start(THREADS)
    try:
        results["cold_start_s"]["prototype"] = proto.cold_start_s
        results["loads"] += [
            r.as_dict() for r in asyncio.run(prototype_loads(proto, args.duration))
        ]
        results["memory"].append({"system": "prototype", "replicas": 1, **memory_mb(proto.pids())})
    finally:
        proto.stop()

    triton = TritonBench(ROOT)
    if triton.available():
        print("Triton (PyTriton)", flush=True)
        triton_results = triton.run(IMAGES, CONCURRENCY, args.duration, THREADS)
        results["loads"] += triton_results["loads"]
        results["memory"].append(triton_results["memory"])
        results["cold_start_s"]["triton"] = triton_results["cold_start_s"]
    else:
        results["notes"].append(f"Triton skipped: {triton.why_unavailable()}")
        print(results["notes"][-1], flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{started[:10]}-{results['machine']['hostname']}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report.markdown(results))
    report.plots(results, stem)
    print(f"wrote {stem}.json, {stem}.md and plots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
