"""Kill one model replica process (by its PID) during a steady Classify and ClassifyBatch load
from the client library with retries on: Serve replaces it, no call or batch image is lost (the
ingress re-sends a call or batch share whose replica died), and every core has a healthy
replica again. Reports calls and images by outcome and the recovery time."""

from __future__ import annotations

import os
import signal
import time

import pytest

from imgclf import ClassifierClient
from tests.integration.conftest import NEURON_CORES, Server
from tests.integration.harness import ClientLoad, report, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0 = "efficientnet-lite0"
LOAD_S = 12.0


def cores_serving(client: ClassifierClient, image: bytes) -> set[tuple[int, ...]]:
    items = client.classify_batch([image] * (2 * NEURON_CORES))
    return {item.served_by.core_ids for item in items if item.ok and item.served_by}


def test_a_killed_replica_is_replaced_and_no_call_is_lost(server: Server) -> None:
    before = server.cluster.replica_pids(LITE0)
    assert len(before) == NEURON_CORES
    victim = before[0]
    load = ClientLoad(
        server.cluster.grpc_target, server.tiger, singles=6, batches=2, batch=NEURON_CORES,
        duration_s=LOAD_S,
    )  # fmt: skip
    with load:
        time.sleep(3)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()

    with ClassifierClient(server.cluster.grpc_target, timeout=60) as client:

        def replaced() -> bool:
            current = server.cluster.replica_pids(LITE0)
            return (
                victim not in current
                and len(current) == NEURON_CORES
                and len(cores_serving(client, server.tiger)) == NEURON_CORES
            )

        recovered = wait_for(replaced, timeout_s=180, period_s=1)
    recovered_s = None if recovered is None else time.monotonic() - killed_at
    report(
        "replica killed",
        f"SIGKILL to 1 of {NEURON_CORES} lite0 replicas under load; calls: "
        f"{load.calls.summary()}; batch images: {load.images.summary()}; all {NEURON_CORES} "
        f"cores serving again after {recovered_s and round(recovered_s, 1)} s",
    )
    assert recovered is not None, "the killed replica was not replaced"
    assert load.calls.lost == 0 and load.images.lost == 0, (load.calls.codes, load.images.codes)
