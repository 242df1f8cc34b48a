"""A replica whose health check fails, injected through configuration (the canary inference of
the replica on NeuronCore 2 raises, as a broken core would): Serve marks it unhealthy and stops
it; its replacements fail their first health check too while the fault stays (a persistent
hardware fault), so core 2 serves nothing and ClassifyBatch keeps succeeding on the other three
cores (no client retries). Once the fault is lifted, a replacement serves core 2 and the
others were never restarted. Reports calls and images by outcome and the times to each step."""

from __future__ import annotations

import time

import pytest

from imgclf import ClassifierClient
from tests.integration.conftest import NEURON_CORES, Server
from tests.integration.harness import ClientLoad, replica_per_core, report, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0 = "efficientnet-lite0"
FAULTY_CORE = "2"


def test_a_replica_failing_health_checks_is_replaced_while_batches_succeed(
    server: Server,
) -> None:
    faulty = {
        **server.user_config(LITE0),
        "inject_faults": {"fail_health_check_on_cores": [FAULTY_CORE]},
    }
    load = ClientLoad(
        server.cluster.grpc_target, server.tiger, batches=1, batch=NEURON_CORES, retry=None
    )
    with ClassifierClient(server.cluster.grpc_target, timeout=60) as client:

        def per_core() -> dict[str, str]:
            return replica_per_core(client, server.tiger, NEURON_CORES)

        before = per_core()
        assert len(before) == NEURON_CORES, before
        with load:
            injected_at = time.monotonic()
            with server.deployment_options(LITE0, user_config=faulty, health_check_period_s=1):
                # The replacement fails its first health check too (the fault stays on
                # its core), so until the fault is lifted core 2 serves nothing.
                removed_s = wait_for(lambda: before[FAULTY_CORE] not in per_core().values(), 120)
                time.sleep(3)  # ClassifyBatch on three cores meanwhile
            assert removed_s is not None, "Serve did not stop the replica failing checks"
            lifted_s = time.monotonic() - injected_at

            def all_cores_healthy() -> bool:
                status = server.cluster.serve_status()[f"imgclf/{LITE0}"]
                return (
                    status["status"] == "HEALTHY"
                    and status["replicas"] == {"RUNNING": NEURON_CORES}
                    and len(per_core()) == NEURON_CORES
                )

            healthy = wait_for(all_cores_healthy, 180, period_s=1)
            healthy_s = None if healthy is None else time.monotonic() - injected_at
        now = per_core()
    report(
        "health-check failure",
        f"ClassifyBatch calls: {load.calls.summary()}; images: {load.images.summary()}; "
        f"p99 call {load.calls.percentile_ms('OK', 99):.0f} ms; core {FAULTY_CORE}'s replica "
        f"stopped {removed_s:.1f} s after the fault was injected (health checks every 1 s); "
        f"fault lifted {lifted_s:.1f} s after; all {NEURON_CORES} cores healthy again "
        f"{healthy_s and round(healthy_s, 1)} s after the injection",
    )
    assert healthy_s is not None, f"not healthy again: cores {sorted(now)}"
    assert load.calls.sent > 0
    assert load.calls.lost == 0 and load.images.lost == 0, (load.calls.codes, load.images.codes)
    # only the faulty core's replica was replaced
    after = {core: replica for core, replica in now.items() if core != FAULTY_CORE}
    assert after == {core: r for core, r in before.items() if core != FAULTY_CORE}
    assert now[FAULTY_CORE] != before[FAULTY_CORE]
