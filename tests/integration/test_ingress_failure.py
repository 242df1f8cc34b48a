"""The front's failures and the health service's truth:
- an ingress replica killed (SIGKILL) under client load with retries on: no call lost, no
  message with Ray's internals; Serve restarts it and the server reports SERVING;
- a model's only replica killed: that model is NOT_SERVING (and so the whole server) until a
  replacement has loaded and warmed up, the other model stays SERVING, and the first SERVING
  answer means a call is served at once;
- after an ingress restart, a model with one of its replicas missing (a core failing its
  health checks) is SERVING on the others."""

from __future__ import annotations

import os
import signal
import time

import pytest

from imgclf import ClassifierClient
from tests.integration.conftest import (
    INGRESS_REPLICAS,
    NEURON_CORES,
    Server,
    assert_no_internals,
)
from tests.integration.harness import (
    ClientLoad,
    health_status,
    replica_per_core,
    report,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0, RESNET50, INGRESS = "efficientnet-lite0", "resnet50", "ClassifierIngress"
LOAD_S = 12.0


def check(server: Server, service: str = "") -> str:
    return health_status(server.channel, service)


def ingress_running(server: Server) -> bool:
    status = server.cluster.serve_status()[f"imgclf/{INGRESS}"]
    return status["replicas"] == {"RUNNING": INGRESS_REPLICAS}


def test_an_ingress_killed_under_load_loses_no_call(server: Server) -> None:
    victims = server.cluster.replica_pids(INGRESS)
    assert len(victims) == INGRESS_REPLICAS
    load = ClientLoad(
        server.cluster.grpc_target, server.tiger, singles=4, batches=1, batch=NEURON_CORES,
        duration_s=LOAD_S,
    )  # fmt: skip
    with load:
        time.sleep(3)
        killed_at = time.monotonic()
        os.kill(victims[0], signal.SIGKILL)
    back_s = wait_for(
        lambda: (
            victims[0] not in server.cluster.replica_pids(INGRESS)
            and ingress_running(server)
            and check(server) == "SERVING"
        ),
        timeout_s=180,
    )
    back_after_kill_s = time.monotonic() - killed_at
    report(
        "ingress killed",
        f"SIGKILL to 1 of {INGRESS_REPLICAS} ingress replicas under 4 Classify and 1 "
        f"ClassifyBatch loops (client retries on); calls: {load.calls.summary()}; batch "
        f"images: {load.images.summary()}; {INGRESS_REPLICAS} ingress replicas and SERVING "
        f"again {back_after_kill_s:.1f} s after the kill",
    )
    for message in load.messages:
        assert_no_internals(message)
    assert load.calls.lost == 0 and load.images.lost == 0, (load.calls.codes, load.messages[:3])
    assert back_s is not None


def test_a_model_without_a_warm_replica_is_not_serving(server: Server) -> None:
    (victim,) = server.cluster.replica_pids(RESNET50)
    seen: dict[str, set[str]] = {"": set(), LITE0: set(), RESNET50: set()}
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()

    def resnet50_serving_again() -> bool:
        status = check(server, RESNET50)
        seen[RESNET50].add(status)
        # Right after an ingress said NOT_SERVING for resnet50, ask it (and, through the
        # front's round robin, the other one) for the whole server: their replica counts
        # are at most a second old then. Polled on their own, the two answers can come from
        # counts of different ages (a busy controller keeps the last ones standing).
        for _ in range(3 if status == "NOT_SERVING" else 1):
            seen[""].add(check(server, ""))
        seen[LITE0].add(check(server, LITE0))
        return "NOT_SERVING" in seen[RESNET50] and status == "SERVING"

    back_s = wait_for(resnet50_serving_again, timeout_s=240, period_s=0.2)
    assert back_s is not None, seen
    started = time.monotonic()
    with ClassifierClient(server.cluster.grpc_target, retry=None, timeout=60) as client:
        first = client.classify(server.tiger, model=RESNET50)
    first_call_s = time.monotonic() - started
    report(
        "model without a warm replica",
        f"SIGKILL to resnet50's only replica: Check(resnet50) went NOT_SERVING, then SERVING "
        f"{time.monotonic() - killed_at:.1f} s after the kill; meanwhile Check('') saw "
        f"{sorted(seen[''])}, Check(efficientnet-lite0) {sorted(seen[LITE0])}; the first "
        f"resnet50 call after SERVING took {first_call_s * 1000:.0f} ms",
    )
    assert seen[LITE0] == {"SERVING"}
    assert "NOT_SERVING" in seen[""]
    assert first.model == RESNET50 and first_call_s < 10


def test_after_an_ingress_restart_a_missing_replica_does_not_stop_serving(
    server: Server,
) -> None:
    faulty = {**server.user_config(LITE0), "inject_faults": {"fail_health_check_on_cores": ["2"]}}
    with ClassifierClient(server.cluster.grpc_target, timeout=60) as client:
        with server.deployment_options(LITE0, user_config=faulty, health_check_period_s=1):
            removed_s = wait_for(
                lambda: "2" not in replica_per_core(client, server.tiger, NEURON_CORES), 120
            )
            assert removed_s is not None, "core 2's replica was not stopped"
            for pid in server.cluster.replica_pids(INGRESS):
                os.kill(pid, signal.SIGKILL)
            restarted_s = wait_for(lambda: ingress_running(server), 180)
            # The front needs a moment to route to the new ingress replicas (HAProxy's health
            # checks): what it answers meanwhile is the front's, not the health service's.
            front_errors: list[str] = []

            def answered() -> bool:
                status = check(server)
                if status not in ("SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"):
                    front_errors.append(status)
                    return False
                return True

            routed_s = wait_for(answered, 60)
            statuses = {service: check(server, service) for service in ("", LITE0, RESNET50)}
            cores = replica_per_core(client, server.tiger, NEURON_CORES)
        healthy_s = wait_for(
            lambda: len(replica_per_core(client, server.tiger, NEURON_CORES)) == NEURON_CORES, 180
        )
    report(
        "ingress restart with a replica missing",
        f"core 2 failing health checks, both ingress replicas killed: back after "
        f"{restarted_s and round(restarted_s, 1)} s, a Check answered "
        f"{routed_s and round(routed_s, 1)} s later (front errors before it: "
        f"{front_errors or 'none'}), with {statuses} while cores "
        f"{sorted(cores)} served; all cores again {healthy_s and round(healthy_s, 1)} s after "
        "the fault was lifted",
    )
    assert restarted_s is not None and routed_s is not None
    assert statuses == {"": "SERVING", LITE0: "SERVING", RESNET50: "SERVING"}, statuses
    assert "2" not in cores and len(cores) == NEURON_CORES - 1
    assert healthy_s is not None
