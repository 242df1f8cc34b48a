"""Multi-node: a head node started with num-cpus 0 and no accelerators (as on EKS, where the
head runs on the addon pool) and two worker nodes, each a separate `ray start` with its own temp
dir declaring `neuron_cores: 2`. Model replicas spread over both workers, one per core, and so
do the ingress replicas, one per worker, none on the head. One worker node (with its ingress
replica and two model replicas) is killed (SIGKILL to its processes, by PID) under client load
with retries: traffic continues on the other; the node is restarted and its replicas come back.
Reports calls and images by outcome, how long the node was gone, and the time until all four
cores served again.

Its own cluster (not the session's): the front runs on the head only, so the workers' fronts
do not compete for one port on this one machine."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from imgclf import ClassifierClient
from imgclf_tools.local_cluster import DEFAULT_CONFIG, LocalCluster, WorkerNode
from tests.conftest import IMAGES_DIR
from tests.integration.harness import ClientLoad, report, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
CORES_PER_WORKER = 2
IN_FLIGHT_S = 1.0
WORKER = {"num_cpus": 1, "resources": {"neuron_cores": CORES_PER_WORKER}}
# Ray marks a node dead after 3 missed 1 s health checks (default 5 x 3 s).
FAST_NODE_DEATH = {
    "metrics_report_interval_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_failure_threshold": 3,
}


@dataclass
class MultiNode:
    cluster: LocalCluster
    workers: list[WorkerNode]


@pytest.fixture(scope="module")
def multinode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiNode]:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["proxy_location"] = "HeadOnly"
    (app,) = config["applications"]
    (lite0,) = app["args"]["models"]
    lite0.update(device="neuron_core", cpus_per_replica=0.25)
    config_path = tmp_path_factory.mktemp("multinode") / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    cluster = LocalCluster.create()
    try:
        cluster.start(num_cpus=0, system_config=FAST_NODE_DEATH)
        workers = [cluster.start_worker(**WORKER) for _ in range(2)]  # type: ignore[arg-type]
        cluster.deploy(config_path)
        cluster.wait_serving(timeout_s=600)
        yield MultiNode(cluster, workers)
    finally:
        cluster.stop()
        assert cluster.pids() == [], "processes of the multi-node cluster are still running"


def node_ids_by_temp_dir(cluster: LocalCluster) -> dict[str, str]:
    """Ray's node id of each node, keyed by the node's temp dir."""
    script = (
        "import json, ray; ray.init(logging_level='ERROR'); print(json.dumps("
        "{n['NodeID']: n['ObjectStoreSocketName'] for n in ray.nodes() if n['Alive']}))"
    )
    sockets: dict[str, str] = cluster.query(script)
    return {
        str(temp_dir): node
        for node, socket in sockets.items()
        for temp_dir in Path(socket).parents
        if temp_dir.name.startswith(("imgclf-ray-", "imgclf-node-"))
    }


def placement(client: ClassifierClient, image: bytes) -> set[tuple[str, str]]:
    """(node id, core ids) of the replicas that served one batch of 8."""
    return {
        (item.served_by.node_id, ",".join(map(str, item.served_by.core_ids)))
        for item in client.classify_batch([image] * 8)
        if item.ok and item.served_by
    }


def test_losing_a_worker_node_moves_traffic_and_its_replicas_come_back(
    multinode: MultiNode,
) -> None:
    cluster, workers = multinode.cluster, multinode.workers
    image = (IMAGES_DIR / "tiger.jpg").read_bytes()
    with ClassifierClient(cluster.grpc_target, timeout=60) as client:
        before = placement(client, image)
    nodes = node_ids_by_temp_dir(cluster)
    worker_nodes = {nodes[str(worker.temp_dir)] for worker in workers}
    assert {node for node, _ in before} == worker_nodes, "replicas are not on both workers"
    assert len(before) == 2 * CORES_PER_WORKER, f"not one replica per core: {before}"
    ingresses = cluster.replica_pids("ClassifierIngress")
    ingress_per_worker = [len(set(ingresses) & set(worker.pids())) for worker in workers]
    assert ingress_per_worker == [1, 1], f"not one ingress replica per worker: {ingresses}"
    victim = workers[0]
    victim_node = nodes[str(victim.temp_dir)]

    with ClientLoad(cluster.grpc_target, image, singles=4, batches=1, batch=4) as load:
        time.sleep(3)
        killed = victim.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        time.sleep(10)  # traffic on the surviving node meanwhile
        back_at = time.monotonic()
        workers[0] = cluster.start_worker(**WORKER)  # type: ignore[arg-type]
        restarted_at = time.monotonic()
        with ClassifierClient(cluster.grpc_target, timeout=60) as client:

            def all_cores_back() -> bool:
                now = placement(client, image)
                return len(now) == 2 * CORES_PER_WORKER and victim_node not in {n for n, _ in now}

            recovered_s = wait_for(all_cores_back, timeout_s=240, period_s=1)
    # Answers that arrive in the first second after the kill may have left the killed node
    # before it died (the client records them when it gets to them, on a busy machine).
    served_while_down = [
        by.node_id for at, by in load.served if killed_at + IN_FLIGHT_S <= at <= back_at
    ]
    report(
        "multi-node",
        f"killed worker node ({len(killed)} processes) under load; calls: "
        f"{load.calls.summary()}; batch images: {load.images.summary()}; "
        f"{len(served_while_down)} single calls served by the other node in the 10 s "
        f"it was gone; after `ray start` again, all {2 * CORES_PER_WORKER} cores served in "
        f"{recovered_s and round(recovered_s, 1)} s "
        f"({recovered_s and round(recovered_s + restarted_at - killed_at, 1)} s after the kill)",
    )
    assert served_while_down and victim_node not in served_while_down
    assert load.calls.lost == 0 and load.images.lost == 0, (load.calls.codes, load.images.codes)
    assert recovered_s is not None, "the restarted node's replicas did not come back"
