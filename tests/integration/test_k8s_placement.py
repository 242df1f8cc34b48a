"""The inf2 overlay's worker group, rebuilt as local Ray nodes with the resources KubeRay gives
each worker (and a head with num-cpus 0, as the overlay's), runs the overlay's Serve config with
one model replica per NeuronCore of every worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from imgclf import Classification, ClassifierClient, DeviceKind
from imgclf_tools.local_cluster import LocalCluster
from tests.conftest import IMAGES_DIR
from tests.k8s.manifests import serve_config, worker_group

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_inf2_workers_place_one_replica_per_neuroncore(tmp_path: Path) -> None:
    group = worker_group("inf2")
    (container,) = group["template"]["spec"]["containers"]
    limits = container["resources"]["limits"]
    # What KubeRay makes of `rayStartParams: {}`: --num-cpus from the CPU limit and
    # --resources '{"neuron_cores": N}' from the aws.amazon.com/neuroncore limit.
    num_cpus = int(limits["cpu"])
    cores = int(limits["aws.amazon.com/neuroncore"])
    workers = group["replicas"]
    config = serve_config("inf2")
    # The front runs on the head only: the workers' fronts would compete for one port on this
    # one machine (on EKS each pod has its own).
    config["proxy_location"] = "HeadOnly"
    (app,) = config["applications"]
    for model in app["args"]["models"]:
        # Stand-in for Inferentia, which can't exist here: the overlay's backend (torch-neuronx)
        # becomes the CPU backend; device, replica counts and CPU shares stay the overlay's.
        assert model["backend"] == "neuronx"
        model["backend"] = "cpu"
    config_path = tmp_path / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    cluster = LocalCluster.create()
    try:
        cluster.start(num_cpus=0)
        for _ in range(workers):
            cluster.start_worker(num_cpus=num_cpus, resources={"neuron_cores": cores})
        cluster.deploy(config_path)
        cluster.wait_serving(timeout_s=900)
        with ClassifierClient(cluster.grpc_target, timeout=120) as client:
            (model,) = client.models().models
            assert (model.replicas, model.device_kind) == (cores * workers, DeviceKind.NEURON_CORE)
            tiger = (IMAGES_DIR / "tiger.jpg").read_bytes()
            results = client.classify_batch([tiger] * (2 * cores * workers))
    finally:
        cluster.stop()
        assert cluster.pids() == []
    served = [r.served_by for r in results if isinstance(r, Classification) and r.served_by]
    assert len(served) == 2 * cores * workers
    placed = {(s.node_id, s.core_ids) for s in served}
    assert len({node for node, _ in placed}) == workers
    assert {core for _, core in placed} == {(core,) for core in range(cores)}
    assert len(placed) == cores * workers  # every core of every worker
    assert len({s.replica_id for s in served}) == cores * workers
