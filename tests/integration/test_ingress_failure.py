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
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgclf import ClassifierClient, ImgclfError, RetryPolicy
from tests.integration.conftest import (
    INGRESS_REPLICAS,
    NEURON_CORES,
    Server,
    assert_no_internals,
)
from tests.integration.figures import Tally, report
from tests.integration.test_health_check_failure import lite0_user_config, replica_per_core

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0, RESNET50, INGRESS = "efficientnet-lite0", "resnet50", "ClassifierIngress"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LOAD_S = 12.0


def check(server: Server, service: str = "") -> str:
    health = health_pb2_grpc.HealthStub(server.channel)
    try:
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    except grpc.RpcError as exc:
        return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def wait_for(condition, timeout_s: float, period_s: float = 0.5) -> float | None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(period_s)
    return None


def ingress_running(server: Server) -> bool:
    status = server.cluster.serve_status()[f"imgclf/{INGRESS}"]
    return status["replicas"] == {"RUNNING": INGRESS_REPLICAS}


def test_an_ingress_killed_under_load_loses_no_call(server: Server) -> None:
    target = server.cluster.grpc_target
    retry = RetryPolicy(max_attempts=5, initial_backoff_s=0.2, max_backoff_s=2.0)
    calls = Tally()
    messages: list[str] = []
    stop_at = time.monotonic() + LOAD_S

    def load(batch: bool) -> None:
        with ClassifierClient(target, retry=retry, timeout=60) as client:
            while time.monotonic() < stop_at:
                try:
                    if batch:
                        items = client.classify_batch([server.tiger] * NEURON_CORES)
                        failed = [item for item in items if not item.ok]
                        messages.extend(item.message for item in failed)  # type: ignore[union-attr]
                        calls.record("OK" if not failed else "ITEM_FAILED")
                    else:
                        client.classify(server.tiger)
                        calls.record("OK")
                except ImgclfError as exc:
                    calls.record(exc.code.name)
                    messages.append(exc.message)

    victims = server.cluster.replica_pids(INGRESS)
    assert len(victims) == INGRESS_REPLICAS
    workers = [threading.Thread(target=load, args=(n == 0,)) for n in range(5)]
    for worker in workers:
        worker.start()
    time.sleep(3)
    killed_at = time.monotonic()
    os.kill(victims[0], signal.SIGKILL)
    for worker in workers:
        worker.join(timeout=LOAD_S + 120)
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
        f"ClassifyBatch loops (client retries on); calls: {calls.summary()}; "
        f"{INGRESS_REPLICAS} ingress replicas and SERVING again "
        f"{back_after_kill_s:.1f} s after the kill",
    )
    for message in messages:
        assert_no_internals(message)
    assert calls.lost == 0, (calls.codes, messages[:3])
    assert back_s is not None


def test_a_model_without_a_warm_replica_is_not_serving(server: Server) -> None:
    (victim,) = server.cluster.replica_pids(RESNET50)
    seen: dict[str, set[str]] = {"": set(), LITE0: set(), RESNET50: set()}
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()

    def resnet50_serving_again() -> bool:
        for service in seen:
            seen[service].add(check(server, service))
        return "NOT_SERVING" in seen[RESNET50] and check(server, RESNET50) == "SERVING"

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
    faulty = {**lite0_user_config(server), "inject_faults": {"fail_health_check_on_cores": ["2"]}}
    with ClassifierClient(server.cluster.grpc_target, timeout=60) as client:
        with server.deployment_options(LITE0, user_config=faulty, health_check_period_s=1):
            removed_s = wait_for(lambda: "2" not in replica_per_core(client, server.tiger), 120)
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
            cores = replica_per_core(client, server.tiger)
        healthy_s = wait_for(
            lambda: len(replica_per_core(client, server.tiger)) == NEURON_CORES, 180
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
