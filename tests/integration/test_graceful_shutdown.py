"""Graceful shutdown: calls in flight when the application is scaled down, or upgraded to a new
model version and rolled back (every replica, the ingress included, replaced by a rolling
update, as when KubeRay applies a changed serveConfigV2), finish with their results; calls made
during the change succeed too. No client retries. Reports, per change, calls and images by
outcome and how long the change took."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
import torch

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from imgclf_serve.models import efficientnet_lite0
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


STRAWBERRY = 949  # ImageNet class index


def new_model_version(path: Path) -> Path:
    """Version 2 of EfficientNet-Lite0: the embedded weights with the "strawberry" logit
    raised, so that every image a version-2 replica classifies comes back "strawberry"."""
    state = torch.load(str(efficientnet_lite0.embedded_weights()), weights_only=True)
    state["_fc.bias"][STRAWBERRY] += 100.0
    torch.save(state, path)
    return path


def deploy_weights(server: Server, weights: Path | None, version: str) -> None:
    """A new model version in the Serve config (what `make k8s` puts in serveConfigV2): Serve
    replaces every replica, the ingress included, by a rolling update."""

    def edit(config: dict) -> None:  # type: ignore[type-arg]
        (app,) = config["applications"]
        (model,) = (m for m in app["args"]["models"] if m["name"] == LITE0)
        model.pop("weights", None)
        model.pop("version", None)
        if weights is not None:
            model.update(weights=str(weights), version=version)

    server.redeploy(edit)


def test_a_new_model_version_rolls_out_and_back_with_calls_in_flight(
    server: Server, tmp_path: Path
) -> None:
    version_2 = new_model_version(tmp_path / "efficientnet-lite0-v2.pt")
    outcomes = []
    try:
        for weights, label, version in ((version_2, "strawberry", "2"), (None, "tiger", "1")):
            before = lite0_replicas(server.stub, server.tiger)

            def rolled_out(label: str = label, before: set[str] = before) -> bool:
                try:
                    request = pb.ClassifyBatchRequest(images=[server.tiger] * 8)
                    items = server.stub.ClassifyBatch(request, timeout=120).items
                except grpc.RpcError:
                    return False  # a probe, not the load under test
                replicas = {item.served_by.replica_id for item in items}
                return (
                    len(replicas) == NEURON_CORES
                    and not (replicas & before)
                    and {item.predictions[0].label for item in items} == {label}
                )

            calls, images, took = asyncio.run(
                during(
                    server,
                    lambda w=weights, v=version: deploy_weights(server, w, v),  # type: ignore[misc]
                    rolled_out,
                )
            )
            listed = server.stub.ListModels(pb.ListModelsRequest(), timeout=30).models
            (lite0,) = (m for m in listed if m.name == LITE0)
            report(
                f"model version {'2 (upgrade)' if weights else '1 (rollback)'}",
                f"calls: {calls.summary()}; images of in-flight batches: {images.summary()}; "
                f"every replica replaced, each answering {label!r}, in {took:.1f} s",
            )
            outcomes.append((calls, images, lite0.version, version))
    finally:
        if len(outcomes) < 2:  # leave the session's server as it was for the other tests
            deploy_weights(server, None, "1")
            server.cluster.wait_serving(timeout_s=300)
    for calls, images, listed_version, version in outcomes:
        assert calls.lost == 0 and images.lost == 0, (calls.codes, images.codes)
        assert listed_version == version  # ListModels names the version now serving
