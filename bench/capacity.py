"""`make bench-capacity`: what the serving path costs without a model, and what it can carry.

    python -m bench.capacity [--slice 5] [--repeats 3] [--out bench/results]

Systems, all running at once on this machine and measured in interleaved slices (A, B, C, A,
B, C, ...), so drift and noise hit each alike:
  before   the previous defaults: Ray Serve's Python gRPC proxy -> one ClassifierIngress ->
           model replicas over Ray actor calls, an access-log line per call
  haproxy  HAProxy -> ClassifierIngress replicas serving gRPC themselves (direct ingress),
           actor calls to the model replicas
  after    the defaults now: as haproxy, over Ray Serve's gRPC transport, no access log
  plain    one grpc.aio process doing the null model's work per image, no Ray (bench.plain_server)

Per system and scenario (Classify; ClassifyBatch of 32 images): closed-loop capacity (calls/s
at a fixed number in flight), and CPU milliseconds per call in each process on the path, read
from /proc while a fixed rate is offered (the same rate to every system). Writes
bench/results/<date>-capacity.{json,md}. The load generator and the plain server run at the
niceness Ray gives its workers (bench.cpu), so the scheduler favours none of the systems.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench import report
from bench.clients import imgclf_call
from bench.processes import ImgclfServer, null_model_config
from bench.run import IMAGES, ROOT, machine
from imgclf_serve.front import Front, Transport
from imgclf_tools import cpu
from imgclf_tools.loadgen import Call, LoadResult, run_load, run_open_loop
from imgclf_tools.ports import free_port
from imgclf_tools.processes import stop_processes

NULL_REPLICAS = 2
BATCH = 32
# (scenario, calls in flight for capacity, offered calls/s for the CPU accounting)
SCENARIOS = (("Classify", 16, 30.0), (f"ClassifyBatch({BATCH})", 4, 3.0))
SETUPS: dict[str, dict[str, Any]] = {
    "before": {
        "front": Front.PROXY,
        "transport": Transport.ACTOR,
        "ingress": {"replicas": 1, "cpus_per_replica": 0},
        "access_log": True,
    },
    "haproxy": {
        "front": Front.HAPROXY,
        "transport": Transport.ACTOR,
        "ingress": {},
        "access_log": True,
    },
    "after": {"front": Front.HAPROXY, "transport": Transport.GRPC, "ingress": {}},
}


@dataclass
class System:
    name: str
    target: str
    pids: Callable[[], list[int]]


@contextlib.contextmanager
def plain_server() -> Iterator[System]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.plain_server", "--port", str(port)], cwd=ROOT
    )
    try:
        target = f"127.0.0.1:{port}"
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        yield System("plain", target, lambda: [process.pid])
    finally:
        stop_processes([process.pid], grace_s=5)
        process.wait(timeout=5)


def calls_for(channel: grpc.aio.Channel, scenario: str) -> tuple[Call, int]:
    per_call = 1 if scenario == "Classify" else BATCH
    return imgclf_call(channel, IMAGES, per_call, model="null"), per_call


async def capacity_slice(system: System, scenario: str, in_flight: int, seconds: float) -> float:
    async with grpc.aio.insecure_channel(system.target) as channel:
        call, per_call = calls_for(channel, scenario)
        result = await run_load(
            system.name,
            scenario,
            call,
            concurrency=in_flight,
            images_per_call=per_call,
            duration_s=seconds,
        )
    return result.calls_per_s


async def cpu_per_call(
    system: System, scenario: str, rate: float, seconds: float
) -> tuple[LoadResult, dict[str, float], dict[str, int], float]:
    """Offer `rate` calls/s for `seconds`; the CPU ms each role spends per answered call over
    what it spends idle in as long (Ray's controller, GCS and agents work without calls too),
    and the steal over both windows."""
    async with grpc.aio.insecure_channel(system.target) as channel:
        call, per_call = calls_for(channel, scenario)
        await run_load(system.name, "warm", call, concurrency=2, images_per_call=1, duration_s=1)
        pids = system.pids()
        before = cpu.sample_with_load_generator(pids)
        await asyncio.sleep(seconds)
        idle = cpu.sample_with_load_generator(pids) - before
        before = cpu.sample_with_load_generator(pids)
        result = await run_open_loop(
            system.name,
            scenario,
            call,
            rate_per_s=rate,
            images_per_call=per_call,
            duration_s=seconds,
        )
        used = cpu.sample_with_load_generator(pids) - before
    calls = max(1, result.calls)
    by_role = {
        ("server" if role == "other" and system.name == "plain" else role): round(
            max(0.0, seconds_used - idle.by_role.get(role, 0.0)) * 1000 / calls, 3
        )
        for role, seconds_used in used.by_role.items()
    }
    return result, by_role, used.processes, used.steal_s + idle.steal_s


def run(slice_s: float, repeats: int, accounting_s: float) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "capacity": {}, "cpu_ms_per_call": {}}
    with (
        tempfile.TemporaryDirectory(prefix="imgclf-capacity-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        systems = []
        for name, setup in SETUPS.items():
            print(f"starting {name}: {setup}", flush=True)
            workdir = Path(tmp) / name
            workdir.mkdir()
            server = ImgclfServer.start(
                workdir,
                null_model_config(
                    NULL_REPLICAS, 0.5, setup["ingress"], access_log=setup.get("access_log")
                ),
                num_cpus=2,
                front=setup["front"],
                transport=setup["transport"],
                model="null",
            )
            stack.callback(server.stop)
            systems.append(System(name, server.cluster.grpc_target, server.pids))
        cpu.match_ray_niceness([0])  # before the plain server starts, so it inherits it
        systems.append(stack.enter_context(plain_server()))

        for scenario, in_flight, rate in SCENARIOS:
            slices: dict[str, list[float]] = {s.name: [] for s in systems}
            for repeat in range(repeats):
                for system in systems:
                    calls_per_s = asyncio.run(capacity_slice(system, scenario, in_flight, slice_s))
                    slices[system.name].append(calls_per_s)
                    print(f"  {scenario} #{repeat + 1} {system.name}: {calls_per_s} calls/s")
            results["capacity"][scenario] = {"in_flight": in_flight, "calls_per_s": slices}
            accounting = {}
            for system in systems:
                load, by_role, processes, steal = asyncio.run(
                    cpu_per_call(system, scenario, rate, accounting_s)
                )
                accounting[system.name] = {
                    "offered_per_s": rate,
                    "load": load.as_dict(),
                    "ms_per_call": by_role,
                    "processes": processes,
                    "steal_s": steal,
                }
                print(f"  {scenario} at {rate}/s {system.name}: {by_role}", flush=True)
            results["cpu_ms_per_call"][scenario] = accounting
    return results


def ratio_summary(slices: dict[str, list[float]], numerator: str, baseline: str) -> str:
    ratios = [a / b for a, b in zip(slices[numerator], slices[baseline], strict=True) if b]
    if not ratios:
        return "n/a"
    return (
        f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}, "
        f"n={len(ratios)})"
    )


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Capacity with the null model ({results['started']})", ""]
    lines.append(f"Machine: {json.dumps(results['machine'])}")
    for scenario, data in results["capacity"].items():
        slices = data["calls_per_s"]
        lines += ["", f"## {scenario}, {data['in_flight']} in flight (calls/s per slice)", ""]
        lines += ["| system | slices | median |", "| --- | --- | --- |"]
        for name, values in slices.items():
            lines.append(
                f"| {name} | {', '.join(map(str, values))} | {statistics.median(values)} |"
            )
        lines.append("")
        for name in slices:
            if name != "plain":
                lines.append(f"- {name} / plain: {ratio_summary(slices, name, 'plain')}")
        lines.append(f"- after / before: {ratio_summary(slices, 'after', 'before')}")
        lines.append(f"- after / haproxy: {ratio_summary(slices, 'after', 'haproxy')}")
        accounting = results["cpu_ms_per_call"][scenario]
        roles = sorted({role for a in accounting.values() for role in a["ms_per_call"]})
        lines += ["", "CPU ms per call at a fixed offered rate, over the same time idle:", ""]
        lines.append("| role | " + " | ".join(accounting) + " |")
        lines.append("| --- |" + " --- |" * len(accounting))
        for role in roles:
            cells = [str(a["ms_per_call"].get(role, "")) for a in accounting.values()]
            lines.append(f"| {role} | " + " | ".join(cells) + " |")
        answered = [
            f"{n}: {a['load']['calls']} calls, p50 {a['load']['p50_ms']} ms, steal {a['steal_s']} s"
            for n, a in accounting.items()
        ]
        lines += ["", "; ".join(answered)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity")
    parser.add_argument("--slice", type=float, default=5.0, help="seconds per capacity slice")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--accounting", type=float, default=10.0, help="seconds per CPU point")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    results = {"started": started, **run(args.slice, args.repeats, args.accounting)}
    report.save(args.out, "capacity", results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
