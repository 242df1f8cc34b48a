"""Autoscaling end to end, Ray's half: Serve's autoscaler on the model deployment and Ray's own
cluster autoscaler (v2, as KubeRay runs it) adding and removing worker nodes that declare
NeuronCores. The "nodes" are Ray nodes the autoscaler starts and stops as processes on this
machine (Ray's fake multi-node provider, imgclf_tools.node_autoscaler): the stand-in for
KubeRay creating worker pods and Karpenter inf nodes, which cannot run here.

As on EKS (k8s/overlays): a head with no NeuronCores, a worker group of nodes with 2 cores
each, one worker at least and two at most; the model autoscales from one worker's cores (2) to
two workers' (4). Under load Serve asks for 4 replicas, two wait for NeuronCores, the autoscaler
starts a second node, the replicas start there, and ClassifyBatch shares and single calls
spread over all four; ListModels and health follow the live count. When the load falls to one
caller, Serve goes back to 2 replicas, all on one node (Serve stops replicas so as to empty
nodes), the other node is idle, the autoscaler stops it and its processes go. No call fails
throughout, without client retries."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
import yaml

from imgclf import ClassifierClient
from imgclf_tools.local_cluster import DEFAULT_CONFIG, LocalCluster
from imgclf_tools.node_autoscaler import NodeType, start_autoscaling
from imgclf_tools.processes import processes_naming
from tests.conftest import IMAGES_DIR
from tests.integration.harness import ClientLoad, health_status, report, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0 = "efficientnet-lite0"
CORES_PER_NODE = 2
WORKERS = NodeType("inf-workers", cpus=1, resources={"neuron_cores": CORES_PER_NODE},
                   min_workers=1, max_workers=2)  # fmt: skip
MIN_REPLICAS = WORKERS.min_workers * CORES_PER_NODE
MAX_REPLICAS = WORKERS.max_workers * CORES_PER_NODE
AUTOSCALING = {
    "min_replicas": MIN_REPLICAS,
    "max_replicas": MAX_REPLICAS,
    "target_ongoing_requests": 1,
    "upscale_delay_s": 1,
    "downscale_delay_s": 5,
    "metrics_interval_s": 0.5,
    "look_back_period_s": 2,
}
NODE_IDLE_TIMEOUT_S = 5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["proxy_location"] = "HeadOnly"  # one front: nodes share this machine's ports
    (app,) = config["applications"]
    (model,) = app["args"]["models"]
    model.update(device="neuron_core", cpus_per_replica=0.25, autoscaling=AUTOSCALING)
    app["args"]["ingress"] = {"replicas": 1, "cpus_per_replica": 0.25}
    path = tmp_path_factory.mktemp("node-autoscaling") / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cluster = LocalCluster.create()
    try:
        start_autoscaling(
            cluster, head_cpus=1, node_types=[WORKERS], idle_timeout_s=NODE_IDLE_TIMEOUT_S
        )
        cluster.deploy(path)
        cluster.wait_serving(timeout_s=600)
        yield cluster
    finally:
        cluster.stop()
        assert cluster.pids() == [], "processes of the autoscaling cluster are still running"


def running(cluster: LocalCluster) -> int:
    replicas: dict[str, int] = cluster.serve_status()[f"imgclf/{LITE0}"]["replicas"]
    return replicas.get("RUNNING", 0)


def neuron_nodes(cluster: LocalCluster) -> dict[str, str]:
    """Alive nodes that declare NeuronCores: node id -> the node's temp dir."""
    script = (
        "import json, ray; ray.init(logging_level='ERROR'); print(json.dumps({n['NodeID']: "
        "n['ObjectStoreSocketName'].split('/session_')[0] for n in ray.nodes() "
        "if n['Alive'] and 'neuron_cores' in n['Resources']}))"
    )
    nodes: dict[str, str] = cluster.query(script)
    return nodes


def listed_replicas(cluster: LocalCluster) -> int:
    with ClassifierClient(cluster.grpc_target, timeout=30) as client:
        return next(m.replicas for m in client.models().models if m.name == LITE0)


class HealthWatch(threading.Thread):
    """grpc.health.v1 Check of the server, every half second, while the scenario runs."""

    def __init__(self, target: str) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.statuses: Counter[str] = Counter()
        self._stop_event = threading.Event()

    def run(self) -> None:
        with grpc.insecure_channel(self.target) as channel:
            while not self._stop_event.wait(0.5):
                self.statuses[health_status(channel)] += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def test_nodes_and_replicas_follow_the_load_with_no_failed_call(cluster: LocalCluster) -> None:
    tiger = (IMAGES_DIR / "tiger.jpg").read_bytes()
    first_nodes = neuron_nodes(cluster)
    assert len(first_nodes) == WORKERS.min_workers
    assert running(cluster) == MIN_REPLICAS
    assert listed_replicas(cluster) == MIN_REPLICAS
    health = HealthWatch(cluster.grpc_target)
    health.start()
    quiet = ClientLoad(cluster.grpc_target, tiger, singles=1, retry=None)
    load = ClientLoad(
        cluster.grpc_target, tiger, singles=6, batches=2, batch=MAX_REPLICAS, retry=None
    )
    with quiet:
        with load:
            started = time.monotonic()
            node_up_s = wait_for(lambda: len(neuron_nodes(cluster)) == 2, timeout_s=240)
            replicas_up_s = wait_for(lambda: running(cluster) == MAX_REPLICAS, timeout_s=240)
            scaled_at = time.monotonic()
            time.sleep(8)  # traffic on every replica
            listed_while_scaled = listed_replicas(cluster)
            with ClassifierClient(cluster.grpc_target, timeout=60, retry=None) as client:
                batch = client.classify_batch([tiger] * MAX_REPLICAS)
        all_nodes = neuron_nodes(cluster)
        load_stopped = time.monotonic()
        replicas_down_s = wait_for(lambda: running(cluster) == MIN_REPLICAS, timeout_s=240)
        node_down_s = wait_for(
            lambda: len(neuron_nodes(cluster)) == WORKERS.min_workers, timeout_s=240
        )
        time.sleep(2)  # the single caller goes on after the node left
    health.stop()
    (removed_node,) = set(all_nodes) - set(neuron_nodes(cluster))
    left_processes = processes_naming(all_nodes[removed_node] + "/")
    listed_after = listed_replicas(cluster)

    answers = load.served + load.served_in_batches
    served_after_scale_up = Counter(
        (by.node_id, by.core_ids) for at, by in answers if at >= scaled_at + 3
    )
    report(
        "node autoscaling",
        f"1 worker node (2 NeuronCores), 2 replicas idle; 6 Classify + 2 ClassifyBatch(4) "
        f"loops: a 2nd node joined after {node_up_s and round(node_up_s, 1)} s, "
        f"{MAX_REPLICAS} replicas running {replicas_up_s and round(replicas_up_s, 1)} s "
        f"later; load down to 1 caller: "
        f"{MIN_REPLICAS} replicas after {replicas_down_s and round(replicas_down_s, 1)} s, "
        f"the node gone {node_down_s and round(node_down_s, 1)} s later; no client retries; "
        f"calls: {load.calls.summary()}, the single caller's: {quiet.calls.summary()}; batch "
        f"images: {load.images.summary()}; health: {dict(health.statuses)}",
    )
    assert node_up_s is not None, "the autoscaler added no node for the waiting replicas"
    assert replicas_up_s is not None, "Serve did not add replicas under load"
    assert {node for node, _ in served_after_scale_up} == set(all_nodes)
    assert len(served_after_scale_up) == MAX_REPLICAS, served_after_scale_up  # every core
    assert {(i.served_by.node_id, i.served_by.core_ids) for i in batch if i.served_by} == set(
        served_after_scale_up
    ), "a batch is not cut into one share per running replica"
    assert listed_while_scaled == MAX_REPLICAS
    assert replicas_down_s is not None, "Serve did not remove replicas once the load fell"
    assert node_down_s is not None, "the autoscaler did not remove the idle node"
    assert len(set(all_nodes) - set(first_nodes)) == 1
    assert left_processes == [], "the removed node's processes are still running"
    assert listed_after == MIN_REPLICAS
    assert set(health.statuses) == {"SERVING"}, health.statuses
    assert load.calls.lost == 0 and load.images.lost == 0, (load.calls.codes, load.images.codes)
    assert quiet.calls.lost == 0, (quiet.calls.codes, quiet.messages[:3])
    assert started < scaled_at < load_stopped
