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
        lite0.setdefault("user_config", {})["max_batch_size"] = size

    server.redeploy(edit)


def wait_until_applied(
    server: Server, size: int, replicas: set[str], timeout_s: float = 120
) -> None:
    """Until ListModels reports `size` and a batch of 8 is served by exactly `replicas`
    (new replica ids would mean a restart, and this would time out)."""
    request = pb.ClassifyBatchRequest(images=[server.tiger] * 8)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        model = server.stub.ListModels(pb.ListModelsRequest(), timeout=30).models[0]
        served = set(replicas_of(server.stub.ClassifyBatch(request, timeout=120)))
        if model.max_batch_size == size and served == replicas:
            return
        assert served <= replicas, f"replicas restarted: {served - replicas}"
        time.sleep(1)
    raise AssertionError(f"max_batch_size {size} not applied to {replicas} in {timeout_s} s")


def test_max_batch_size_changes_without_restarting_replicas(server: Server) -> None:
    request = pb.ClassifyBatchRequest(images=[server.tiger] * 8)
    before = set(replicas_of(server.stub.ClassifyBatch(request, timeout=120)))
    assert len(before) == 4
    try:
        set_max_batch_size(server, 4)
        wait_until_applied(server, 4, before)
    finally:
        set_max_batch_size(server, 8)
        wait_until_applied(server, 8, before)
