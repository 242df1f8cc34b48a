"""`make bench`: imgclf against Triton and the in-process ceiling, on the real model, in
interleaved slices (imgclf, imgclf-oip, Triton, ceiling, imgclf, ...), several repeats,
reported as median ratios with their spread; then open-loop points at 50% and 80% of each
server's capacity. Each point logs CPU steal and CPU seconds per process role.

Two ways to call imgclf: `imgclf` is its own API (imgclf.v1, grpc.aio stubs; ClassifyBatch of
32 at the batch point), `imgclf-oip` the Open Inference Protocol with the very client and
requests that drive Triton (tritonclient's asyncio client, BYTES [N,1], N = Triton's).

    python -m bench.compare [--slice 6] [--repeats 3] [--out bench/results]

The same work everywhere: EfficientNet-Lite0, the three seed images cycled, the same decode and
preprocessing (imgclf_serve.preprocess), softmax and top-5. imgclf and Triton each get two
model instances of one torch thread; the ceiling is two one-thread processes running the same
code back to back. The load generator shares the machine's CPUs with the server under test,
and runs, like Triton and the ceiling, at the niceness Ray gives its workers (bench.cpu).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from bench import report
from bench.capacity import ratio_summary
from bench.ceiling import Ceiling
from bench.clients import imgclf_call
from bench.processes import ImgclfServer, serve_config
from bench.run import IMAGES, ROOT, machine
from bench.triton import OipTarget, TritonBench, TritonServer
from imgclf_tools import cpu
from imgclf_tools.loadgen import LoadResult, run_load, run_open_loop
from imgclf_tools.processes import memory_mb

REPLICAS = 2
# (scenario, imgclf images per call, calls in flight)
SCENARIOS = (("c=1", 1, 1), ("c=16", 1, 16), ("batch32 c=4", 32, 4))
# Triton refuses requests over its max batch (8): its batch point sends 8 images per call
# (and so does imgclf-oip, the same requests).
TRITON_PER_CALL = {"c=1": 1, "c=16": 1, "batch32 c=4": 8}
SYSTEMS = ("imgclf", "imgclf-oip", "triton")
OPEN_LOOP_SHARES = (0.5, 0.8)


def imgclf_config() -> dict[str, Any]:
    """imgclf's Serve config for the side-by-side runs: two model replicas of one CPU each. One
    node, no head to keep it off: the ingress reserves no CPU slot, so the two replicas get one
    each, as Triton's two instances do."""
    config = serve_config(REPLICAS, 1)
    config["applications"][0]["args"]["ingress"] = {"cpus_per_replica": 0}
    return config


def imgclf_slice(
    server: ImgclfServer, per_call: int, in_flight: int, seconds: float, rate: float | None = None
) -> dict[str, Any]:
    async def drive() -> LoadResult:
        async with grpc.aio.insecure_channel(server.cluster.grpc_target) as channel:
            call = imgclf_call(channel, IMAGES, per_call)
            if rate is not None:
                return await run_open_loop(
                    "imgclf",
                    f"{per_call} at {rate}/s",
                    call,
                    rate_per_s=rate,
                    images_per_call=per_call,
                    duration_s=seconds,
                )
            return await run_load(
                "imgclf",
                f"{per_call} c={in_flight}",
                call,
                concurrency=in_flight,
                images_per_call=per_call,
                duration_s=seconds,
            )

    return asyncio.run(drive()).as_dict()


def measured(pids: Callable[[], list[int]], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `work`, adding the CPU seconds each role used meanwhile and the machine's steal."""
    before = cpu.sample_with_load_generator(pids())
    result = work()
    used = cpu.sample_with_load_generator(pids()) - before
    return {**result, "cpu_s": used.by_role, "steal_s": used.steal_s}


def run(slice_s: float, repeats: int) -> dict[str, Any]:
    triton = TritonBench(ROOT)
    if not triton.available():
        raise SystemExit(triton.why_unavailable())
    results: dict[str, Any] = {"machine": machine(), "slice_s": slice_s, "points": []}
    config = imgclf_config()
    with (
        tempfile.TemporaryDirectory(prefix="imgclf-compare-") as tmp,
        triton.serving(REPLICAS) as triton_server,
        Ceiling(REPLICAS, IMAGES) as ceiling,
    ):
        server = ImgclfServer.start(Path(tmp), config, num_cpus=REPLICAS)
        cpu.match_ray_niceness([0, *triton_server.pids(), *ceiling.pids()])
        oip = ImgclfOip(triton, server, triton_server.env)
        try:
            closed_loop(results, server, oip, triton_server, ceiling, slice_s, repeats)
            try:
                open_loop(results, server, oip, triton_server, slice_s, repeats)
            except Exception as exc:  # keep the closed-loop results
                results["notes"] = [f"open loop failed: {exc!r}"]
            results["memory"] = {
                "imgclf": memory_mb(server.pids()),
                "triton": memory_mb(triton_server.pids()),
            }
            results["cold_start_s"] = {
                "imgclf": server.cold_start_s,
                "triton": triton_server.cold_start_s,
            }
        finally:
            server.stop()
    return results


class ImgclfOip:
    """imgclf driven over the Open Inference Protocol by the load generator Triton gets."""

    def __init__(self, bench: TritonBench, server: ImgclfServer, env: dict[str, str]) -> None:
        self._bench = bench
        self._target = OipTarget(
            "imgclf-oip", server.cluster.grpc_port, "efficientnet-lite0", "IMAGE"
        )
        self._env = env

    def load(
        self, concurrency: int, duration: float, per_call: int = 1, rate: float | None = None
    ) -> dict[str, Any]:
        return self._bench.oip_load(self._target, concurrency, duration, per_call, rate, self._env)


def closed_loop(
    results: dict[str, Any],
    server: ImgclfServer,
    oip: ImgclfOip,
    triton: TritonServer,
    ceiling: Ceiling,
    slice_s: float,
    repeats: int,
) -> None:
    for repeat in range(repeats):
        for scenario, per_call, in_flight in SCENARIOS:
            point = {"repeat": repeat, "scenario": scenario}
            imgclf = measured(
                server.pids, lambda p=per_call, c=in_flight: imgclf_slice(server, p, c, slice_s)
            )
            t_per_call = TRITON_PER_CALL[scenario]
            oip_result = measured(
                server.pids, lambda p=t_per_call, c=in_flight: oip.load(c, slice_s, per_call=p)
            )
            triton_result = measured(
                triton.pids,
                lambda p=t_per_call, c=in_flight: triton.load(c, slice_s, per_call=p),
            )
            # The point's own keys last: a LoadResult has its own `system` and `scenario`.
            results["points"].append({**imgclf, **point, "system": "imgclf"})
            results["points"].append({**oip_result, **point, "system": "imgclf-oip"})
            results["points"].append({**triton_result, **point, "system": "triton"})
            print(
                f"  #{repeat + 1} {scenario}: imgclf {imgclf['images_per_s']} img/s "
                f"p50 {imgclf['p50_ms']} ms; imgclf-oip {oip_result['images_per_s']} img/s "
                f"p50 {oip_result['p50_ms']} ms; triton {triton_result['images_per_s']} img/s "
                f"p50 {triton_result['p50_ms']} ms",
                flush=True,
            )
        for batch, processes in ((4, REPLICAS), (1, 1)):
            images_per_s, ms_per_batch = ceiling.run(batch, slice_s, processes)
            results["points"].append(
                {
                    "repeat": repeat,
                    "scenario": f"ceiling batch {batch} x{processes}",
                    "system": "ceiling",
                    "images_per_s": images_per_s,
                    "ms_per_batch": ms_per_batch,
                }
            )
            print(f"  #{repeat + 1} ceiling batch {batch} x{processes}: {images_per_s} img/s")


def open_loop(
    results: dict[str, Any],
    server: ImgclfServer,
    oip: ImgclfOip,
    triton: TritonServer,
    slice_s: float,
    repeats: int,
) -> None:
    """Fixed arrival rates of single-image calls at shares of each server's own capacity
    (its median closed-loop images/s at 16 in flight)."""
    capacity = {
        system: statistics.median(
            p["images_per_s"]
            for p in results["points"]
            if p["system"] == system and p["scenario"] == "c=16"
        )
        for system in SYSTEMS
    }
    results["capacity_images_per_s"] = capacity
    for repeat in range(repeats):
        for share in OPEN_LOOP_SHARES:
            rate = {system: round(share * value, 1) for system, value in capacity.items()}
            point = {"repeat": repeat, "scenario": f"open {int(share * 100)}%"}
            imgclf = measured(
                server.pids, lambda r=rate["imgclf"]: imgclf_slice(server, 1, 0, slice_s, r)
            )
            oip_result = measured(
                server.pids, lambda r=rate["imgclf-oip"]: oip.load(0, slice_s, rate=r)
            )
            triton_result = measured(
                triton.pids, lambda r=rate["triton"]: triton.load(0, slice_s, rate=r)
            )
            results["points"].append(
                {**imgclf, **point, "system": "imgclf", "rate": rate["imgclf"]}
            )
            results["points"].append(
                {**oip_result, **point, "system": "imgclf-oip", "rate": rate["imgclf-oip"]}
            )
            results["points"].append(
                {**triton_result, **point, "system": "triton", "rate": rate["triton"]}
            )
            print(
                f"  #{repeat + 1} open {share:.0%}: imgclf at {rate['imgclf']}/s p50 "
                f"{imgclf['p50_ms']} p99 {imgclf['p99_ms']} ms; imgclf-oip at "
                f"{rate['imgclf-oip']}/s p50 {oip_result['p50_ms']} p99 {oip_result['p99_ms']} ms; "
                f"triton at {rate['triton']}/s "
                f"p50 {triton_result['p50_ms']} p99 {triton_result['p99_ms']} ms",
                flush=True,
            )


def series(results: dict[str, Any], system: str, scenario: str, key: str) -> list[float]:
    return [
        p[key] for p in results["points"] if p["system"] == system and p["scenario"] == scenario
    ]


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# imgclf vs Triton vs the in-process ceiling ({results['started']})", ""]
    lines.append(f"Machine: {json.dumps(results['machine'])}; slices of {results['slice_s']} s")
    lines += ["", "| point | system | images/s per slice | p50 ms | p99 ms |", "| --- " * 5 + "|"]
    for scenario in [s for s, _, _ in SCENARIOS] + [
        f"open {int(s * 100)}%" for s in OPEN_LOOP_SHARES
    ]:
        for system in SYSTEMS:
            rates = series(results, system, scenario, "images_per_s")
            p50 = series(results, system, scenario, "p50_ms")
            p99 = series(results, system, scenario, "p99_ms")
            if rates:
                lines.append(
                    f"| {scenario} | {system} | {', '.join(map(str, rates))} | "
                    f"{statistics.median(p50)} | {statistics.median(p99)} |"
                )
    for scenario in sorted({p["scenario"] for p in results["points"] if p["system"] == "ceiling"}):
        rates = series(results, "ceiling", scenario, "images_per_s")
        ms = series(results, "ceiling", scenario, "ms_per_batch")
        lines.append(
            f"| {scenario} | ceiling | {', '.join(map(str, rates))} | {statistics.median(ms)} "
            "ms/batch | |"
        )
    lines += ["", "Ratios (median of per-repeat ratios, min-max):", ""]
    by_repeat = {
        name: {
            "imgclf": series(results, "imgclf", scenario, "images_per_s"),
            "imgclf-oip": series(results, "imgclf-oip", scenario, "images_per_s"),
            "triton": series(results, "triton", scenario, "images_per_s"),
            "ceiling": series(results, "ceiling", f"ceiling batch 4 x{REPLICAS}", "images_per_s"),
        }
        for name, scenario in (("c16", "c=16"), ("batch", "batch32 c=4"), ("c1", "c=1"))
    }
    lines.append(
        f"- Classify c=16 / Triton c=16: {ratio_summary(by_repeat['c16'], 'imgclf', 'triton')}"
    )
    lines.append(
        f"- Classify c=16 / ceiling: {ratio_summary(by_repeat['c16'], 'imgclf', 'ceiling')}"
    )
    for name, label in (("c1", "c=1"), ("c16", "c=16"), ("batch", "infer(8) c=4")):
        same = ratio_summary(by_repeat[name], "imgclf-oip", "triton")
        lines.append(f"- same client and requests (tritonclient, {label}): imgclf / Triton {same}")
    best_triton = [
        max(a, b)
        for a, b in zip(
            series(results, "triton", "c=16", "images_per_s"),
            series(results, "triton", "batch32 c=4", "images_per_s"),
            strict=True,
        )
    ]
    batch = {"imgclf": by_repeat["batch"]["imgclf"], "triton best": best_triton}
    batch_ratio = ratio_summary(batch, "imgclf", "triton best")
    lines.append(f"- ClassifyBatch(32) c=4 / Triton's best point: {batch_ratio}")
    c1 = statistics.median(series(results, "imgclf", "c=1", "p50_ms"))
    batch1 = statistics.median(series(results, "ceiling", "ceiling batch 1 x1", "ms_per_batch"))
    lines.append(
        f"- Classify c=1 p50 {c1} ms vs in-process batch-1 {batch1} ms: +{round(c1 - batch1, 1)} ms"
    )
    lines.append(f"- memory: {json.dumps(results['memory'])}")
    lines.append(f"- cold start: {json.dumps(results['cold_start_s'])}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare")
    parser.add_argument("--slice", type=float, default=6.0, help="seconds recorded per slice")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    results = {"started": started, **run(args.slice, args.repeats)}
    report.save(args.out, "compare", results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
