"""A replica whose health check fails, injected through configuration (the canary inference of
the replica on NeuronCore 2 raises, as a broken core would): Serve marks it unhealthy and stops
it; its replacements fail their first health check too while the fault stays (a persistent
hardware fault), so core 2 serves nothing and ClassifyBatch keeps succeeding on the other three
cores (no client retries). Once the fault is lifted, a replacement serves core 2 and the
others were never restarted. Reports calls and images by outcome and the times to each step."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from imgclf import ClassifierClient, ImgclfError
from tests.integration.conftest import NEURON_CORES, Server
from tests.integration.figures import Tally, report

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0 = "efficientnet-lite0"
FAULTY_CORE = "2"


def replica_per_core(client: ClassifierClient, image: bytes) -> dict[str, str]:
    items = client.classify_batch([image] * (2 * NEURON_CORES))
    return {
        ",".join(map(str, item.served_by.core_ids)): item.served_by.replica_id
        for item in items
        if item.ok and item.served_by
    }


def lite0_user_config(server: Server) -> dict:  # type: ignore[type-arg]
    (app,) = yaml.safe_load(server.config_path.read_text())["applications"]
    (lite0,) = (d for d in app["deployments"] if d["name"] == LITE0)
    return dict(lite0["user_config"])


def test_a_replica_failing_health_checks_is_replaced_while_batches_succeed(
    server: Server,
) -> None:
    target = server.cluster.grpc_target
    calls, images = Tally(), Tally()
    stop = threading.Event()

    def batches() -> None:
        with ClassifierClient(target, retry=None, timeout=60) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    items = client.classify_batch([server.tiger] * NEURON_CORES)
                except ImgclfError as exc:
                    calls.record(exc.code.name)
                    continue
                calls.record("OK", time.monotonic() - started)
                for item in items:
                    images.record("OK" if item.ok else item.code.name)

    with ClassifierClient(target, timeout=60) as client:
        before = replica_per_core(client, server.tiger)
        assert len(before) == NEURON_CORES, before
        load = threading.Thread(target=batches)
        load.start()
        try:
            faulty = {
                **lite0_user_config(server),
                "inject_faults": {"fail_health_check_on_cores": [FAULTY_CORE]},
            }
            injected_at = time.monotonic()
            with server.deployment_options(LITE0, user_config=faulty, health_check_period_s=1):
                # The replacement fails its first health check too (the fault stays on
                # its core), so until the fault is lifted core 2 serves nothing.
                removed_s = None
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    now = replica_per_core(client, server.tiger)
                    if before[FAULTY_CORE] not in now.values():
                        removed_s = time.monotonic() - injected_at
                        break
                    time.sleep(0.5)
                time.sleep(3)  # ClassifyBatch on three cores meanwhile
            assert removed_s is not None, "Serve did not stop the replica failing checks"
            lifted_s = time.monotonic() - injected_at
            healthy_s = None
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                status = server.cluster.serve_status()[f"imgclf/{LITE0}"]
                now = replica_per_core(client, server.tiger)
                if (
                    status["status"] == "HEALTHY"
                    and status["replicas"] == {"RUNNING": NEURON_CORES}
                    and len(now) == NEURON_CORES
                ):
                    healthy_s = time.monotonic() - injected_at
                    break
                time.sleep(1)
        finally:
            stop.set()
            load.join(timeout=120)
    after = {core: replica for core, replica in now.items() if core != FAULTY_CORE}
    report(
        "health-check failure",
        f"ClassifyBatch calls: {calls.summary()}; images: {images.summary()}; "
        f"p99 call {calls.percentile_ms('OK', 99):.0f} ms; core {FAULTY_CORE}'s replica "
        f"stopped {removed_s:.1f} s after the fault was injected (health checks every 1 s); "
        f"fault lifted {lifted_s:.1f} s after; all {NEURON_CORES} cores healthy again "
        f"{healthy_s and round(healthy_s, 1)} s after the injection",
    )
    assert healthy_s is not None, f"not healthy again: {status}, cores {sorted(now)}"
    assert calls.sent > 0
    assert calls.lost == 0 and images.lost == 0, (calls.codes, images.codes)
    # only the faulty core's replica was replaced
    assert after == {core: r for core, r in before.items() if core != FAULTY_CORE}
    assert now[FAULTY_CORE] != before[FAULTY_CORE]
