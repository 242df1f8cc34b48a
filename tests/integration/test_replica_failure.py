"""Kill one model replica process (by its PID) during a steady Classify and ClassifyBatch load
from the client library with retries on: Serve replaces it, no call or batch image is lost (the
ingress re-sends a call or batch share whose replica died), and every core has a healthy
replica again. Reports calls and images by outcome and the recovery time."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from imgclf import ClassifierClient, ImgclfError, RetryPolicy
from tests.integration.conftest import NEURON_CORES, Server
from tests.integration.figures import Tally, report

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LOAD_S = 12.0
WORKERS = 6


def lite0_replica_pids(server: Server) -> list[int]:
    return server.cluster.replica_pids("efficientnet-lite0")


def test_a_killed_replica_is_replaced_and_no_call_is_lost(server: Server) -> None:
    target = server.cluster.grpc_target
    retry = RetryPolicy(max_attempts=5, initial_backoff_s=0.2, max_backoff_s=2.0)
    calls, images = Tally(), Tally()
    stop_at = time.monotonic() + LOAD_S

    def singles() -> None:
        with ClassifierClient(target, retry=retry, timeout=60) as client:
            while time.monotonic() < stop_at:
                try:
                    client.classify(server.tiger)
                    calls.record("OK")
                except ImgclfError as exc:
                    calls.record(exc.code.name)

    def batches() -> None:
        with ClassifierClient(target, retry=retry, timeout=60) as client:
            while time.monotonic() < stop_at:
                try:
                    items = client.classify_batch([server.tiger] * NEURON_CORES)
                    calls.record("OK")
                except ImgclfError as exc:
                    calls.record(exc.code.name)
                    continue
                for item in items:
                    images.record("OK" if item.ok else item.code.name)

    before = lite0_replica_pids(server)
    assert len(before) == NEURON_CORES
    workers = [threading.Thread(target=singles) for _ in range(WORKERS)]
    workers += [threading.Thread(target=batches) for _ in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(3)
    victim = before[0]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    for worker in workers:
        worker.join(timeout=LOAD_S + 120)

    recovered_s = None
    with ClassifierClient(target, timeout=60) as client:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            current = lite0_replica_pids(server)
            cores = {
                r.served_by.core_ids
                for r in client.classify_batch([server.tiger] * (2 * NEURON_CORES))
                if r.ok and r.served_by
            }
            if (
                victim not in current
                and len(current) == NEURON_CORES
                and len(cores) == NEURON_CORES
            ):
                recovered_s = time.monotonic() - killed_at
                break
            time.sleep(1)
    report(
        "replica killed",
        f"SIGKILL to 1 of {NEURON_CORES} lite0 replicas under load; calls: {calls.summary()}; "
        f"batch images: {images.summary()}; all {NEURON_CORES} cores serving again after "
        f"{recovered_s and round(recovered_s, 1)} s",
    )
    assert recovered_s is not None, "the killed replica was not replaced"
    assert calls.lost == 0 and images.lost == 0, (calls.codes, images.codes)
