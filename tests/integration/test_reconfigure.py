"""Batching settings change in place: a config-file redeploy that touches only a model's
user_config reaches the running replicas through reconfigure(), without restarting them."""

from __future__ import annotations

import time

import pytest

from imgclf.v1 import classifier_service_pb2 as pb
from tests.integration.conftest import Server, replicas_of

pytestmark = pytest.mark.integration


def set_max_batch_size(server: Server, size: int) -> None:
    def edit(config: dict) -> None:  # type: ignore[type-arg]
        (app,) = config["applications"]
        (lite0,) = (d for d in app["deployments"] if d["name"] == "efficientnet-lite0")
        lite0["user_config"]["max_batch_size"] = size

    server.redeploy(edit)


def wait_for_max_batch_size(server: Server, size: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        models = server.stub.ListModels(pb.ListModelsRequest(), timeout=30).models
        if models[0].max_batch_size == size:
            return
        time.sleep(1)
    raise AssertionError(f"max_batch_size did not become {size} within {timeout_s} s")


def test_max_batch_size_changes_without_restarting_replicas(
    server: Server, seed_images: dict[str, bytes]
) -> None:
    request = pb.ClassifyBatchRequest(images=[seed_images["tiger.jpg"]] * 8)
    before = set(replicas_of(server.stub.ClassifyBatch(request, timeout=120)))
    try:
        set_max_batch_size(server, 4)
        wait_for_max_batch_size(server, 4)
        response = server.stub.ClassifyBatch(request, timeout=120)
        assert set(replicas_of(response)) == before
        assert {item.predictions[0].label for item in response.items} == {"tiger"}
    finally:
        set_max_batch_size(server, 8)
        wait_for_max_batch_size(server, 8)
    assert set(replicas_of(server.stub.ClassifyBatch(request, timeout=120))) == before
