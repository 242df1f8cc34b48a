"""`make bench-hedging`: what the straggler policy (ClassifierIngress user_config.hedging)
buys and costs, hedging off against on, in interleaved slices on one cluster.

    python -m bench.hedging [--slice 8] [--repeats 3] [--out bench/results]

One local cluster declaring `neuron_cores: 4` (four Lite0 replicas on the CPU, core ids 0-3,
as the integration tests run them), ClassifyBatch(8) (a share of 2 images per replica) in a
closed loop, 1 call in flight (light) and 4 (saturated), each in two scenarios:
  even       every replica as fast as the machine lets it: the cost of hedging (duplicate
             work when shares merely vary)
  straggler  the replica on core 1 sleeps 1.5 s before each forward pass
               (user_config.inject_faults.slow_forward_on_cores)
Hedging is switched in place (the ingress's reconfigure), so both modes share the cluster, and
slices alternate off, on, off, on ... Reports images/s, p50/p99 per call and the shares hedged
(`ray_imgclf_share_events_total{event="hedged"}`), medians over the repeats with their range.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc

from bench import report
from bench.clients import imgclf_batch
from bench.processes import MODEL, ImgclfServer, serve_config
from bench.run import IMAGES, machine
from imgclf_tools.loadgen import run_load

BATCH = 8
REPLICAS = 4
LOADS = {"light": 1, "saturated": 4}
SLOW_S = 1.5
SCENARIOS = {
    "even": {},
    "straggler": {"slow_forward_on_cores": ["1"], "slow_forward_s": SLOW_S},
}


def config_for(faults: dict[str, Any], hedging: bool) -> dict[str, Any]:
    config = serve_config(replicas=REPLICAS, cpus_per_replica=0.25)
    (app,) = config["applications"]
    app["args"]["models"][0]["device"] = "neuron_core"
    for deployment in app["deployments"]:
        if deployment["name"] == MODEL:
            deployment["user_config"] = {
                **deployment.get("user_config", {}),
                "inject_faults": faults,
            }
        if deployment["name"] == "ClassifierIngress":
            user_config = deployment.setdefault("user_config", {})
            user_config.setdefault("hedging", {})["enabled"] = hedging
    return config


def hedged_shares(server: ImgclfServer) -> float:
    url = f"http://127.0.0.1:{server.cluster.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    pattern = r'^ray_imgclf_share_events_total\{[^}]*event="hedged"[^}]*\} (\S+)'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


async def one_slice(
    target: str, images: list[bytes], in_flight: int, seconds: float
) -> dict[str, float]:
    async with grpc.aio.insecure_channel(target) as channel:
        load = await run_load(
            "imgclf",
            f"ClassifyBatch({BATCH})",
            imgclf_batch(channel, images, BATCH),
            concurrency=in_flight,
            images_per_call=BATCH,
            duration_s=seconds,
            warmup_s=2.0,
        )
    return {"images_per_s": load.images_per_s, "p50_ms": load.p50_ms, "p99_ms": load.p99_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    images = list(IMAGES)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    slices: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as workdir:
        server = ImgclfServer.start(
            Path(workdir),
            config_for({}, hedging=False),
            num_cpus=2,
            resources={"neuron_cores": REPLICAS},
        )
        try:
            for scenario, faults in SCENARIOS.items():
                for load, in_flight in LOADS.items():
                    for repeat in range(args.repeats):
                        for hedging in (False, True):
                            server.deploy(copy.deepcopy(config_for(faults, hedging)))
                            server.cluster.wait_serving(timeout_s=300, progress=lambda _: None)
                            before = hedged_shares(server)
                            measured = asyncio.run(
                                one_slice(server.cluster.grpc_target, images, in_flight, args.slice)
                            )
                            time.sleep(3)  # metrics reach the exporter about a second later
                            measured["hedged_shares"] = hedged_shares(server) - before
                            row = {"scenario": scenario, "load": load, "hedging": hedging}
                            slices.append({**row, "repeat": repeat, **measured})
                            print(slices[-1], flush=True)
        finally:
            server.stop()
    results = {"started": started, "machine": machine(), "slices": slices}
    report.save(args.out, "hedging", results, render(results))


def describe(host: dict[str, Any]) -> str:
    return (
        f"{host['cpu']}, {host['cpus']} vCPUs, {host['memory_gb']} GB, Python {host['python']}, "
        f"torch {host['torch']}, Ray {host['ray']}"
    )


def render(results: dict[str, Any]) -> str:
    lines = [
        f"# Straggler hedging, off against on ({results['started']}, `make bench-hedging`)",
        "",
        f"Machine: {describe(results['machine'])}. ClassifyBatch({BATCH}) closed loop, "
        f"{REPLICAS} Lite0 replicas (CPU, core ids 0-{REPLICAS - 1}); slices interleaved "
        "off/on; median over the repeats (range).",
        "",
        "| scenario | load | hedging | images/s | p50 ms | p99 ms | shares hedged per slice |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario, load, hedging in itertools.product(SCENARIOS, LOADS, (False, True)):
        key = (scenario, load, hedging)
        rows = [s for s in results["slices"] if (s["scenario"], s["load"], s["hedging"]) == key]

        def cell(name: str, rows: list[dict[str, Any]] = rows) -> str:
            values = [row[name] for row in rows]
            return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"

        lines.append(
            f"| {scenario} | {load} ({LOADS[load]} in flight) | {'on' if hedging else 'off'} | "
            f"{cell('images_per_s')} | {cell('p50_ms')} | {cell('p99_ms')} | "
            f"{cell('hedged_shares')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
