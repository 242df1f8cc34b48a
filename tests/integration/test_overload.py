"""Overload: measure capacity (closed loop), then offer 4x that rate (open loop, bounded in
time) of Classify calls without client retries. Excess calls fail fast with RESOURCE_EXHAUSTED
(the model deployment's max_queued_requests), admitted calls keep a p99 bounded by the
configured queue, the server's memory stays bounded, and it is healthy right after.
Reports calls by outcome, p50/p99 unloaded vs admitted vs rejected, and peak RSS."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from imgclf_serve.settings import MODEL_MAX_ONGOING_REQUESTS, MODEL_MAX_QUEUED_REQUESTS
from imgclf_tools.processes import memory_mb
from tests.integration.conftest import INGRESS_REPLICAS, NEURON_CORES, Server
from tests.integration.harness import Tally, report

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0 = "efficientnet-lite0"
OVERLOAD = 4
MEASURE_S = 6.0
OVERLOAD_S = 10.0
CALL_TIMEOUT_S = 60.0
MB_PER_GIB = 1024


async def timed_classify(stub: pb_grpc.ClassifierServiceStub, image: bytes, tally: Tally) -> None:
    started = time.monotonic()
    try:
        await stub.Classify(pb.ClassifyRequest(image=image), timeout=CALL_TIMEOUT_S)
        code = "OK"
    except grpc.aio.AioRpcError as exc:
        code = exc.code().name
    tally.record(code, time.monotonic() - started)


async def closed_loop(target: str, image: bytes, callers: int, seconds: float) -> Tally:
    tally = Tally()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        end = time.monotonic() + seconds

        async def caller() -> None:
            while time.monotonic() < end:
                await timed_classify(stub, image, tally)

        await asyncio.gather(*(caller() for _ in range(callers)))
    return tally


async def open_loop(
    target: str, image: bytes, rate: float, seconds: float
) -> tuple[Tally, float, float]:
    """Start a call every 1/rate s for `seconds`, whatever happened to earlier ones; returns
    the outcomes, the rate actually offered and the rate of calls served while offering."""
    tally = Tally(expected_failures=frozenset({"RESOURCE_EXHAUSTED"}))
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        calls = []
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            calls.append(asyncio.ensure_future(timed_classify(stub, image, tally)))
        window = time.monotonic() - start
        offered, served = len(calls) / window, tally.succeeded / window
        await asyncio.gather(*calls)
    return tally, offered, served


async def health_checks(target: str, stop: asyncio.Event) -> Tally:
    """grpc.health.v1 Check every second (a Kubernetes readiness probe's view)."""
    statuses = Tally()
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set():
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                statuses.record(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
            except grpc.aio.AioRpcError as exc:
                statuses.record(exc.code().name)
            await asyncio.sleep(1)
    return statuses


async def overload_with_probes(
    target: str, image: bytes, rate: float, seconds: float
) -> tuple[Tally, float, float, Tally]:
    stop = asyncio.Event()
    probes = asyncio.ensure_future(health_checks(target, stop))
    tally, offered, served = await open_loop(target, image, rate, seconds)
    stop.set()
    return tally, offered, served, await probes


class RssSampler(threading.Thread):
    """Peak of the summed resident memory (MB) of the cluster's processes, every 0.5 s."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self._server = server
        self._done = threading.Event()
        self.peak = 0.0

    def total(self) -> float:
        return memory_mb(self._server.cluster.pids())["rss_mb"]

    def run(self) -> None:
        while not self._done.wait(0.5):
            self.peak = max(self.peak, self.total())

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def test_four_times_capacity_is_shed_fast_and_admitted_calls_stay_bounded(
    server: Server,
) -> None:
    target, image = server.cluster.grpc_target, server.tiger
    unloaded = asyncio.run(closed_loop(target, image, callers=1, seconds=4))
    measured = asyncio.run(closed_loop(target, image, callers=4 * NEURON_CORES, seconds=MEASURE_S))
    capacity = measured.succeeded / MEASURE_S
    assert measured.codes.keys() == {"OK"}, measured.codes

    sampler = RssSampler(server)
    rss_before = sampler.total()
    sampler.start()
    overload, offered, served, probes = asyncio.run(
        overload_with_probes(target, image, OVERLOAD * capacity, OVERLOAD_S)
    )
    rss_peak = sampler.stop()

    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        reply = pb_grpc.ClassifierServiceStub(channel).Classify(
            pb.ClassifyRequest(image=image), timeout=10
        )

    (app,) = yaml.safe_load(server.config_path.read_text())["applications"]
    (lite0,) = (d for d in app["deployments"] if d["name"] == LITE0)
    # Each ingress replica queues up to max_queued_requests of its own (Ray counts per caller).
    admitted_at_once = NEURON_CORES * lite0.get(
        "max_ongoing_requests", MODEL_MAX_ONGOING_REQUESTS
    ) + INGRESS_REPLICAS * lite0.get("max_queued_requests", MODEL_MAX_QUEUED_REQUESTS)
    # Under overload this machine's 2 CPUs also run the load generator and refuse the
    # excess, so the queue drains at the rate served meanwhile, not the unloaded capacity.
    queue_drain_s = admitted_at_once / served
    unloaded_p99 = unloaded.percentile_ms("OK", 99)
    admitted_p99 = overload.percentile_ms("OK", 99)
    shed_p99 = overload.percentile_ms("RESOURCE_EXHAUSTED", 99)
    report(
        "overload",
        f"capacity {capacity:.1f} img/s (closed loop, {4 * NEURON_CORES} callers); offered "
        f"{offered:.1f} calls/s ({offered / capacity:.1f}x) for {OVERLOAD_S:.0f} s: "
        f"{overload.summary()}; p50/p99 ms: unloaded "
        f"{unloaded.percentile_ms('OK', 50):.0f}/{unloaded_p99:.0f}, admitted "
        f"{overload.percentile_ms('OK', 50):.0f}/{admitted_p99:.0f} "
        f"({admitted_p99 / unloaded_p99:.0f}x unloaded p99; the queue of {admitted_at_once} "
        f"calls drains in {queue_drain_s * 1000:.0f} ms at the {served:.1f} calls/s served "
        "meanwhile), shed "
        f"{overload.percentile_ms('RESOURCE_EXHAUSTED', 50):.0f}/{shed_p99:.0f}; cluster RSS "
        f"{rss_before / MB_PER_GIB:.2f} GiB before, peak {rss_peak / MB_PER_GIB:.2f} GiB; "
        f"health checks meanwhile: {dict(probes.codes)}",
    )
    assert offered >= 0.75 * OVERLOAD * capacity, "the load generator fell behind"
    assert overload.codes["RESOURCE_EXHAUSTED"] > 0, "nothing was shed at 4x capacity"
    assert overload.lost == 0, overload.codes
    assert shed_p99 < admitted_p99 / 2, "shed calls did not fail fast"
    # An admitted call waits to reach admission (as long as a shed call's whole life), then
    # for the queue ahead of it to drain; an unbounded queue would grow ~3x faster than served.
    assert admitted_p99 < 1.5 * queue_drain_s * 1000 + shed_p99 + 2 * unloaded_p99
    assert rss_peak - rss_before < MB_PER_GIB
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert probes.codes.keys() == {"SERVING"}, "overload took the server out of service"
    assert reply.predictions[0].label == "tiger"
