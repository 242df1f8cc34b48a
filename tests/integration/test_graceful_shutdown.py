"""Graceful shutdown: calls in flight when the application is scaled down or redeployed with new
code (every replica, the ingress included, replaced by a rolling update) finish with their
results; calls made during the change succeed too. No client retries. Reports, per change,
calls and images by outcome and how long the change took."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from tests.integration.conftest import NEURON_CORES, Server
from tests.integration.harness import Tally, report

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0 = "efficientnet-lite0"
IN_FLIGHT_BATCHES = 4
BATCH = 24  # a few seconds of work per call on this machine


def lite0_replicas(stub: pb_grpc.ClassifierServiceStub, image: bytes) -> set[str]:
    reply = stub.ClassifyBatch(pb.ClassifyBatchRequest(images=[image] * 8), timeout=120)
    return {item.served_by.replica_id for item in reply.items}


async def during(
    server: Server, change: Callable[[], None], done: Callable[[], bool]
) -> tuple[Tally, Tally, float]:
    """Start IN_FLIGHT_BATCHES long ClassifyBatch calls, make `change` (a redeploy) while they
    run, keep sending single Classify calls until `done()`; returns call and image outcomes."""
    calls, images = Tally(), Tally()
    async with grpc.aio.insecure_channel(server.cluster.grpc_target) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)

        async def batch() -> None:
            request = pb.ClassifyBatchRequest(images=[server.tiger] * BATCH)
            try:
                reply = await stub.ClassifyBatch(request, timeout=300)
            except grpc.aio.AioRpcError as exc:
                calls.record(exc.code().name)
                return
            calls.record("OK")
            for item in reply.items:
                images.record(grpc.StatusCode.OK.name if not item.HasField("error") else "ERROR")

        async def singles(stop: asyncio.Event) -> None:
            while not stop.is_set():
                try:
                    await stub.Classify(pb.ClassifyRequest(image=server.tiger), timeout=300)
                    calls.record("OK")
                except grpc.aio.AioRpcError as exc:
                    calls.record(exc.code().name)

        in_flight = [asyncio.ensure_future(batch()) for _ in range(IN_FLIGHT_BATCHES)]
        stop = asyncio.Event()
        single_callers = [asyncio.ensure_future(singles(stop)) for _ in range(4)]
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await asyncio.to_thread(change)
        deadline = time.monotonic() + 300
        completed = False
        while not completed and time.monotonic() < deadline:
            await asyncio.sleep(1)
            completed = await asyncio.to_thread(done)
        took = time.monotonic() - started
        stop.set()
        await asyncio.gather(*in_flight, *single_callers)
    assert completed, "the change did not complete in 300 s"
    return calls, images, took


def test_in_flight_calls_finish_when_scaled_down_and_back(server: Server) -> None:
    assert len(lite0_replicas(server.stub, server.tiger)) == NEURON_CORES
    original: dict[str, object] = {}
    figures = []
    for replicas, change in (
        (2, lambda: original.update(server.set_deployment_options(LITE0, num_replicas=2))),
        (NEURON_CORES, lambda: server.set_deployment_options(LITE0, **original)),
    ):
        calls, images, took = asyncio.run(
            during(
                server,
                change,
                lambda n=replicas: len(lite0_replicas(server.stub, server.tiger)) == n,
            )
        )
        report(
            f"graceful scale to {replicas} replicas",
            f"calls: {calls.summary()}; images of in-flight batches: {images.summary()}; "
            f"done in {took:.1f} s",
        )
        figures.append((calls, images))
    for calls, images in figures:
        assert calls.lost == 0 and images.lost == 0, (calls.codes, images.codes)


def change_code_version(server: Server, pixels: int) -> None:
    """A change to the application's args: Serve replaces every replica (rolling update)."""

    def edit(config: dict) -> None:  # type: ignore[type-arg]
        (app,) = config["applications"]
        app["args"].setdefault("limits", {})["max_image_pixels"] = pixels

    server.redeploy(edit)


def test_in_flight_calls_finish_through_a_rolling_redeploy(server: Server) -> None:
    original = server.stub.ListModels(pb.ListModelsRequest(), timeout=30).limits.max_image_pixels
    outcomes = []
    try:
        for pixels in (original + 1, original):  # out and back: two full rolling updates
            before = lite0_replicas(server.stub, server.tiger)

            def rolled_out(pixels: int = pixels, before: set[str] = before) -> bool:
                try:
                    limits = server.stub.ListModels(pb.ListModelsRequest(), timeout=30).limits
                    now = lite0_replicas(server.stub, server.tiger)
                except grpc.RpcError:
                    return False  # a probe, not the load under test
                return (
                    limits.max_image_pixels == pixels
                    and len(now) == NEURON_CORES
                    and not (now & before)
                )

            calls, images, took = asyncio.run(
                during(
                    server, lambda pixels=pixels: change_code_version(server, pixels), rolled_out
                )
            )
            report(
                f"rolling redeploy (max_image_pixels -> {pixels})",
                f"calls: {calls.summary()}; images of in-flight batches: {images.summary()}; "
                f"all replicas replaced in {took:.1f} s",
            )
            outcomes.append((calls, images))
    finally:
        if len(outcomes) < 2:  # leave the session's server as it was for the other tests
            change_code_version(server, original)
            server.cluster.wait_serving(timeout_s=300)
    for calls, images in outcomes:
        assert calls.lost == 0 and images.lost == 0, (calls.codes, images.codes)
