"""Kill one model replica process (by its PID) during a steady Classify load from the client
library with retries on: Serve replaces it, no call is lost, and every core has a healthy
replica again. Reports calls sent, succeeded, failed by code, lost, and the recovery time."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from imgclf import ClassifierClient, ImgclfError, RetryPolicy
from tests.integration.conftest import NEURON_CORES, Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LOAD_S = 12.0
WORKERS = 6


def lite0_replica_pids(server: Server) -> list[int]:
    pids = []
    for pid in server.cluster.pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("ray::ServeReplica:imgclf:efficientnet-lite0"):
            pids.append(pid)
    return pids


def test_a_killed_replica_is_replaced_and_no_call_is_lost(server: Server) -> None:
    target = server.cluster.grpc_target
    retry = RetryPolicy(max_attempts=5, initial_backoff_s=0.2, max_backoff_s=2.0)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + LOAD_S

    def load() -> None:
        with ClassifierClient(target, retry=retry, timeout=60) as client:
            while time.monotonic() < stop_at:
                try:
                    client.classify(server.tiger)
                    outcome = "OK"
                except ImgclfError as exc:
                    outcome = exc.code.name
                with lock:
                    outcomes[outcome] += 1

    before = lite0_replica_pids(server)
    assert len(before) == NEURON_CORES
    workers = [threading.Thread(target=load) for _ in range(WORKERS)]
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
    sent = sum(outcomes.values())
    failed = {code: n for code, n in outcomes.items() if code != "OK"}
    print(
        f"\nsent {sent}, succeeded {outcomes['OK']}, failed {failed}, lost {sent - outcomes['OK']}"
        f", all {NEURON_CORES} cores serving again after {recovered_s and round(recovered_s, 1)} s"
    )
    assert recovered_s is not None, "the killed replica was not replaced"
    assert outcomes["OK"] == sent, f"calls failed despite retries: {outcomes}"
