"""The serving front: the session's cluster answers through HAProxy (the default), with no
Python proxy on the request path; Ray Serve's Python gRPC proxy stays selectable and serves
the same APIs (imgclf.v1, the Open Inference Protocol, health) with the same status codes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from imgclf_serve.front import Front
from imgclf_tools.local_cluster import DEFAULT_CONFIG, LocalCluster
from tests.integration.conftest import Server, assert_no_internals
from tests.integration.open_inference import labels, model_infer

pytestmark = pytest.mark.integration


def process_names(cluster: LocalCluster) -> list[str]:
    names = []
    for pid in cluster.pids():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        names.append(Path(raw.split(b"\0", 1)[0].decode(errors="replace")).name)
    return names


def test_the_default_front_is_haproxy_over_ingress_replicas(server: Server) -> None:
    assert server.cluster.front is Front.HAPROXY
    names = process_names(server.cluster)
    assert "haproxy" in names, names
    assert len(server.cluster.replica_pids("ClassifierIngress")) == 2
    reply = server.stub.Classify(pb.ClassifyRequest(image=server.tiger), timeout=60)
    assert reply.predictions[0].label == "tiger"


def ingress_killed_under_calls(
    cluster: LocalCluster, stub: pb_grpc.ClassifierServiceStub, image: bytes
) -> dict[str, list[str]]:
    """SIGKILL the ingress replica while 4 ClassifyBatch calls are in flight; their outcomes
    by status code name, with the status messages."""
    outcomes: dict[str, list[str]] = {}

    def call() -> None:
        try:
            stub.ClassifyBatch(pb.ClassifyBatchRequest(images=[image] * 16), timeout=120)
            outcomes.setdefault("OK", []).append("")
        except grpc.RpcError as exc:
            outcomes.setdefault(exc.code().name, []).append(exc.details() or "")

    (ingress,) = cluster.replica_pids("ClassifierIngress")
    calls = [threading.Thread(target=call) for _ in range(4)]
    for thread in calls:
        thread.start()
    time.sleep(1.0)
    os.kill(ingress, signal.SIGKILL)
    for thread in calls:
        thread.join(timeout=180)
    return outcomes


@pytest.mark.slow
def test_rays_python_proxy_stays_selectable(tmp_path: Path, seed_images: dict[str, bytes]) -> None:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    (app,) = config["applications"]
    (lite0,) = app["args"]["models"]
    lite0.update(device="cpu", replicas=1, cpus_per_replica=0.5)
    config_path = tmp_path / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    cluster = LocalCluster.create(front=Front.PROXY)
    try:
        cluster.start(num_cpus=2)
        cluster.deploy(config_path)
        cluster.wait_serving(timeout_s=600)
        assert "haproxy" not in process_names(cluster)
        with grpc.insecure_channel(cluster.grpc_target) as channel:
            stub = pb_grpc.ClassifierServiceStub(channel)
            reply = stub.Classify(pb.ClassifyRequest(image=seed_images["tiger.jpg"]), timeout=60)
            assert reply.predictions[0].label == "tiger"
            with pytest.raises(grpc.RpcError) as refused:
                stub.Classify(pb.ClassifyRequest(image=b"not an image"), timeout=60)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert_no_internals(refused.value.details())
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            # The Open Inference Protocol through the same proxy.
            images = [seed_images["tiger.jpg"], seed_images["strawberry.jpg"]]
            assert labels(model_infer(cluster.grpc_target, images))[::5] == ["tiger", "strawberry"]
            # The ingress dies under calls in flight: Ray's proxy answers UNAVAILABLE (which
            # clients retry) with a short message, not INTERNAL with Ray's actor details.
            outcomes = ingress_killed_under_calls(cluster, stub, seed_images["tiger.jpg"])
        assert set(outcomes) <= {"OK", "UNAVAILABLE"} and "UNAVAILABLE" in outcomes, outcomes
        for details in outcomes["UNAVAILABLE"]:
            assert_no_internals(details)
    finally:
        cluster.stop()
        assert cluster.pids() == []
