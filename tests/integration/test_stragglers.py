"""A straggler: the replica on NeuronCore 1 sleeps before every forward pass (injected:
`slow_forward_on_cores`, as a throttled or noisy core would), so every ClassifyBatch with a
share on it waits for it. The same sequential calls with the ingress's hedging off, then on
(its user_config, applied in place): a share late by a multiple of the median share time is
sent to the next replica too and the first answer wins. Reports both latencies and how many
calls had no image answered by the straggler."""

from __future__ import annotations

import time

import numpy as np
import pytest

from imgclf import ClassifierClient
from tests.integration.conftest import NEURON_CORES, Server
from tests.integration.harness import report

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0 = "efficientnet-lite0"
INGRESS = "ClassifierIngress"
SLOW_CORE = 1
SLOW_S = 2.0
CALLS = 8
HEDGING = {"after_median_multiple": 3.0, "min_delay_s": 0.05, "max_hedged_fraction": 0.5}


def timed_batches(client: ClassifierClient, image: bytes) -> tuple[list[float], int]:
    """Seconds per ClassifyBatch (2 images per replica) and calls the slow core took no part in."""
    seconds, avoided = [], 0
    for _ in range(CALLS):
        started = time.monotonic()
        items = client.classify_batch([image] * (2 * NEURON_CORES))
        seconds.append(time.monotonic() - started)
        assert all(item.ok for item in items)
        cores = {item.served_by.core_ids for item in items if item.ok and item.served_by}
        avoided += (SLOW_CORE,) not in cores
    return seconds, avoided


def test_a_slow_replica_is_hedged_around(server: Server) -> None:
    slow = {
        **server.user_config("efficientnet-lite0"),
        "inject_faults": {"slow_forward_on_cores": [str(SLOW_CORE)], "slow_forward_s": SLOW_S},
    }
    off = {"hedging": {**HEDGING, "enabled": False}}
    on = {"hedging": {**HEDGING, "enabled": True}}
    with (
        ClassifierClient(server.cluster.grpc_target, retry=None, timeout=120) as client,
        server.deployment_options(LITE0, user_config=slow),
    ):
        with server.deployment_options(INGRESS, user_config=off):
            plain, plain_avoided = timed_batches(client, server.tiger)
        with server.deployment_options(INGRESS, user_config=on):
            timed_batches(client, server.tiger)  # the median of share times settles
            hedged, hedged_avoided = timed_batches(client, server.tiger)

    def p(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) * 1000

    report(
        "straggler",
        f"NeuronCore {SLOW_CORE}'s replica sleeps {SLOW_S:.0f} s per forward pass; {CALLS} "
        f"sequential ClassifyBatch({2 * NEURON_CORES}) calls: hedging off p50/p99 "
        f"{p(plain, 50):.0f}/{p(plain, 99):.0f} ms ({plain_avoided} calls without the slow "
        f"core), on p50/p99 {p(hedged, 50):.0f}/{p(hedged, 99):.0f} ms ({hedged_avoided} "
        f"without it; hedge after 3x the median share time, at most 50 % of shares)",
    )
    assert plain_avoided == 0  # without hedging every call waits for the straggler
    assert min(plain) >= SLOW_S
    assert hedged_avoided > CALLS // 2
    assert p(hedged, 50) < p(plain, 50) / 2
