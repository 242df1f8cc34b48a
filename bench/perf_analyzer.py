"""`make bench-perf-analyzer`: Triton's own C++ load generator, perf_analyzer, against imgclf
(over the Open Inference Protocol) and Triton (PyTriton), in interleaved slices (imgclf,
Triton, imgclf, ...), several repeats, reported as median ratios with their spread.

    python -m bench.perf_analyzer [--slice 6] [--repeats 3] [--out bench/results]

The same requests to both: the three seed images as real input data (`--input-data`), one
image per request (`-b 1`, a BYTES [1,1] tensor), closed loop at 1 and 16 requests in flight.
perf_analyzer reads each server's ModelMetadata and ModelConfig to build its requests, so this
also checks that imgclf's answers to those are usable by Triton's tooling.

perf_analyzer comes from the tritonclient 2.50.0 wheel (`make perf-analyzer` puts it in
.venv-perf-analyzer): later wheels either need a newer glibc than Debian 12's (2.55-2.60) or no
longer ship it (2.61+); the `perf-analyzer` package on PyPI is a 0.1.0 placeholder. It links
libcudart 12 (pip `nvidia-cuda-runtime-cu12`; no GPU is used) and libb64 (Debian `libb64-0d`).
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.capacity import ratio_summary
from bench.compare import REPLICAS, imgclf_config
from bench.processes import ImgclfServer
from bench.run import IMAGES, ROOT, machine
from bench.triton import TritonBench
from imgclf_tools import cpu

VENV = ROOT / ".venv-perf-analyzer"
BINARY = VENV / "bin" / "perf_analyzer"
CONCURRENCY = (1, 16)
# system -> (model, BYTES input) as each server names them
TARGETS = {"imgclf": ("efficientnet-lite0", "IMAGE"), "triton": ("efficientnet_lite0", "image")}


def cudart_dir() -> Path:
    (found,) = VENV.glob("lib/python*/site-packages/nvidia/cuda_runtime/lib")
    return found


def input_data(path: Path, input_name: str) -> Path:
    """perf_analyzer's real-data file: one entry per seed image. A "b64" value is the tensor's
    raw contents, so each BYTES element carries its 4-byte little-endian length first."""
    entries = [
        {input_name: {"b64": base64.b64encode(struct.pack("<I", len(image)) + image).decode()}}
        for image in IMAGES
    ]
    path.write_text(json.dumps({"data": entries}))
    return path


def measure(system: str, port: int, concurrency: int, slice_s: float, workdir: Path) -> dict:  # type: ignore[type-arg]
    """One perf_analyzer run of 3 windows of `slice_s`: images/s and latency percentiles (ms),
    as it reports them over its windows."""
    model, input_name = TARGETS[system]
    data = input_data(workdir / f"{system}-data.json", input_name)
    out = workdir / f"{system}-c{concurrency}.csv"
    command = [
        str(BINARY),
        *("-m", model, "-u", f"127.0.0.1:{port}", "-i", "grpc", "-b", "1"),
        *("--input-data", str(data), "--shape", f"{input_name}:1"),
        *("--concurrency-range", str(concurrency)),
        *("--measurement-interval", str(int(slice_s * 1000))),
        # perf_analyzer wants 3 windows before it reports; any 3 are "stable" here: the
        # interleaving and repeats give the spread.
        *("--max-trials", "3", "--stability-percentage", "999"),
        *("-f", str(out)),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=slice_s * 4 + 120,
        env={"LD_LIBRARY_PATH": str(cudart_dir()), "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"perf_analyzer on {system} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    (row,) = list(csv.DictReader(out.open()))
    return {
        "system": system,
        "concurrency": concurrency,
        "images_per_s": round(float(row["Inferences/Second"]), 2),
        "p50_ms": round(float(row["p50 latency"]) / 1000, 1),
        "p99_ms": round(float(row["p99 latency"]) / 1000, 1),
    }


def run(slice_s: float, repeats: int) -> dict[str, Any]:
    if not BINARY.exists():
        raise SystemExit(f"{BINARY} does not exist; run `make perf-analyzer` first")
    triton = TritonBench(ROOT)
    if not triton.available():
        raise SystemExit(triton.why_unavailable())
    results: dict[str, Any] = {"machine": machine(), "slice_s": slice_s, "points": []}
    with (
        tempfile.TemporaryDirectory(prefix="imgclf-perf-analyzer-") as tmp,
        triton.serving(REPLICAS) as triton_server,
    ):
        workdir = Path(tmp)
        server = ImgclfServer.start(workdir, imgclf_config(), num_cpus=REPLICAS)
        cpu.match_ray_niceness([0, *triton_server.pids()])
        ports = {"imgclf": server.cluster.grpc_port, "triton": triton_server.grpc_port}
        try:
            for repeat in range(repeats):
                for concurrency in CONCURRENCY:
                    for system, port in ports.items():
                        point = measure(system, port, concurrency, slice_s, workdir)
                        results["points"].append({**point, "repeat": repeat})
                        print(
                            f"  #{repeat + 1} c={concurrency} {system}: "
                            f"{point['images_per_s']} img/s p50 {point['p50_ms']} ms "
                            f"p99 {point['p99_ms']} ms",
                            flush=True,
                        )
        finally:
            server.stop()
    return results


def series(results: dict[str, Any], system: str, concurrency: int, key: str) -> list[float]:
    return [
        p[key]
        for p in results["points"]
        if p["system"] == system and p["concurrency"] == concurrency
    ]


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# perf_analyzer: imgclf vs Triton ({results['started']})", ""]
    lines.append(f"Machine: {json.dumps(results['machine'])}; slices of {results['slice_s']} s")
    lines += [
        "",
        "| in flight | system | images/s per slice | p50 ms | p99 ms |",
        "| --- " * 5 + "|",
    ]
    for concurrency in CONCURRENCY:
        for system in TARGETS:
            rates = series(results, system, concurrency, "images_per_s")
            p50 = statistics.median(series(results, system, concurrency, "p50_ms"))
            p99 = statistics.median(series(results, system, concurrency, "p99_ms"))
            lines.append(
                f"| {concurrency} | {system} | {', '.join(map(str, rates))} | {p50} | {p99} |"
            )
    lines += ["", "Ratios (median of per-repeat ratios, min-max):", ""]
    for concurrency in CONCURRENCY:
        slices = {s: series(results, s, concurrency, "images_per_s") for s in TARGETS}
        ratio = ratio_summary(slices, "imgclf", "triton")
        lines.append(f"- {concurrency} in flight, imgclf / Triton: {ratio}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf_analyzer")
    parser.add_argument("--slice", type=float, default=6.0, help="seconds per measurement window")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    results = {"started": started, **run(args.slice, args.repeats)}
    report.save(args.out, "perf-analyzer", results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
