"""Serve autoscaling of a model deployment (`models[].autoscaling`), on its own cluster that
declares 4 NeuronCores: one replica while idle; under load Serve adds replicas up to every
core, ClassifyBatch shares spread over the new replicas as they come; once the load stops,
replicas go back to the minimum; no call or image fails throughout. (Nodes joining and leaving,
KubeRay's autoscaler's half, is not exercised here.)"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import yaml

from imgclf import ClassifierClient
from imgclf_tools.local_cluster import DEFAULT_CONFIG, LocalCluster
from tests.conftest import IMAGES_DIR
from tests.integration.harness import ClientLoad, report, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0 = "efficientnet-lite0"
CORES = 4
AUTOSCALING = {
    "min_replicas": 1,
    "max_replicas": CORES,
    "target_ongoing_requests": 1,
    "upscale_delay_s": 1,
    "downscale_delay_s": 5,
    "metrics_interval_s": 0.5,
    "look_back_period_s": 2,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    (app,) = config["applications"]
    (model,) = app["args"]["models"]
    model.update(device="neuron_core", cpus_per_replica=0.25, autoscaling=AUTOSCALING)
    app["args"]["ingress"] = {"replicas": 1, "cpus_per_replica": 0.25}
    path = tmp_path_factory.mktemp("autoscaling") / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cluster = LocalCluster.create()
    try:
        cluster.start(num_cpus=2, resources={"neuron_cores": CORES})
        cluster.deploy(path)
        cluster.wait_serving(timeout_s=600)
        yield cluster
    finally:
        cluster.stop()
        assert cluster.pids() == [], "processes of the autoscaling cluster are still running"


def running(cluster: LocalCluster) -> int:
    replicas: dict[str, int] = cluster.serve_status()[f"imgclf/{LITE0}"]["replicas"]
    return replicas.get("RUNNING", 0)


def test_replicas_follow_the_load_up_and_down_without_a_failed_call(cluster: LocalCluster) -> None:
    tiger = (IMAGES_DIR / "tiger.jpg").read_bytes()
    assert running(cluster) == AUTOSCALING["min_replicas"]
    load = ClientLoad(cluster.grpc_target, tiger, singles=6, batches=2, batch=2 * CORES)
    with load:
        started = time.monotonic()
        up_s = wait_for(lambda: running(cluster) == CORES, timeout_s=240, period_s=1)
        scaled_at = time.monotonic()
        time.sleep(8)  # traffic on every replica
    answers = load.served + load.served_in_batches
    cores_after = {by.core_ids for at, by in answers if at >= scaled_at + 3}
    with ClassifierClient(cluster.grpc_target, timeout=60) as client:
        batch = client.classify_batch([tiger] * (2 * CORES))
    stopped = time.monotonic()
    down_s = wait_for(
        lambda: running(cluster) == AUTOSCALING["min_replicas"], timeout_s=240, period_s=1
    )
    with ClassifierClient(cluster.grpc_target, timeout=60) as client:
        after = client.classify(tiger)
    report(
        "autoscaling",
        f"1 replica idle; 6 Classify + 2 ClassifyBatch(8) loops: {CORES} replicas after "
        f"{up_s and round(up_s, 1)} s; load stopped: back to 1 after "
        f"{down_s and round(down_s, 1)} s; calls: {load.calls.summary()}; batch images: "
        f"{load.images.summary()}; cores serving after the scale-up: {sorted(cores_after)}",
    )
    assert up_s is not None, "Serve did not add replicas under load"
    assert cores_after == {(core,) for core in range(CORES)}  # the new replicas took work
    assert {item.served_by.core_ids for item in batch if item.ok and item.served_by} == {
        (core,) for core in range(CORES)
    }  # one batch spread over every replica (and only running ones), as it is cut
    assert down_s is not None, "Serve did not remove replicas once idle"
    assert after.top.label == "tiger"
    assert load.calls.lost == 0 and load.images.lost == 0, (load.calls.codes, load.images.codes)
    assert started < scaled_at < stopped
