"""placement.plan_replicas: core kind and replica count from the cluster's resources."""

from __future__ import annotations

import pytest

from imgclf_serve.devices import DeviceKind
from imgclf_serve.placement import IngressPlan, ReplicaPlan, plan_ingress, plan_replicas
from imgclf_serve.settings import IngressConfig, ModelConfig


def plan(resources: dict[str, float], **model: object) -> ReplicaPlan:
    config = ModelConfig(name="efficientnet-lite0", **model)  # type: ignore[arg-type]
    return plan_replicas([config], resources)["efficientnet-lite0"]


def test_one_replica_per_neuron_core() -> None:
    result = plan({"CPU": 4, "neuron_cores": 4}, cpus_per_replica=0.5)
    assert result == ReplicaPlan(DeviceKind.NEURON_CORE, 4, 0.5)
    assert result.ray_actor_options() == {"num_cpus": 0.5, "resources": {"neuron_cores": 1}}


def test_one_replica_per_gpu() -> None:
    result = plan({"CPU": 16, "GPU": 2})
    assert (result.device_kind, result.replicas) == (DeviceKind.GPU, 2)
    assert result.ray_actor_options() == {"num_cpus": 1.0, "num_gpus": 1}


def test_cpu_slots_by_cpus_per_replica() -> None:
    assert plan({"CPU": 2}).replicas == 2
    assert plan({"CPU": 8}, cpus_per_replica=2).replicas == 4
    assert plan({"CPU": 2}).ray_actor_options() == {"num_cpus": 1.0}


def test_explicit_replicas_and_device_win() -> None:
    result = plan({"CPU": 2, "neuron_cores": 16}, device="cpu", replicas=3)
    assert (result.device_kind, result.replicas) == (DeviceKind.CPU, 3)


def test_explicit_neuron_backend_implies_neuron_cores() -> None:
    assert plan({"neuron_cores": 2}, backend="neuronx").device_kind is DeviceKind.NEURON_CORE


def test_no_cores_yet_needs_explicit_replicas() -> None:
    with pytest.raises(ValueError, match="set `replicas`"):
        plan({"CPU": 1}, device="neuron_core")
    assert plan({"CPU": 1}, device="neuron_core", replicas=4).replicas == 4


def test_two_models_cannot_both_claim_every_core() -> None:
    models = [ModelConfig(name="efficientnet-lite0"), ModelConfig(name="resnet50")]
    with pytest.raises(ValueError, match="several models"):
        plan_replicas(models, {"neuron_cores": 4})
    models[1] = ModelConfig(name="resnet50", device="cpu", replicas=1)
    plans = plan_replicas(models, {"neuron_cores": 4, "CPU": 2})
    assert plans["efficientnet-lite0"].replicas == 4
    assert plans["resnet50"].device_kind is DeviceKind.CPU


def ingress(nodes: list[dict[str, float]], **config: object) -> IngressPlan:
    return plan_ingress(IngressConfig(**config), nodes)  # type: ignore[arg-type]


def test_one_ingress_per_node_and_one_more_per_n_cores_never_on_a_cpu_less_head() -> None:
    head = {"CPU": 0, "memory": 8e9}
    inf2_xlarge = {"CPU": 3, "neuron_cores": 2}
    inf2_48xlarge = {"CPU": 190, "neuron_cores": 24}
    assert ingress([head, inf2_xlarge, inf2_xlarge], cores_per_replica=8).replicas == 2
    assert ingress([head, inf2_48xlarge], cores_per_replica=8).replicas == 3
    assert ingress([{"CPU": 16, "GPU": 8}], cores_per_replica=4).replicas == 2
    assert ingress([{"CPU": 2}], cores_per_replica=8).replicas == 1


def test_explicit_ingress_replicas_win_and_a_cpu_less_cluster_needs_them() -> None:
    assert ingress([{"CPU": 0}], replicas=3).replicas == 3
    with pytest.raises(ValueError, match=r"set `ingress\.replicas`"):
        ingress([{"CPU": 0, "neuron_cores": 0}])


def test_cpu_replicas_leave_the_ingress_its_cpus() -> None:
    plan_ = plan_replicas([ModelConfig(name="efficientnet-lite0")], {"CPU": 4}, reserved_cpus=1)
    assert plan_["efficientnet-lite0"].replicas == 3
    on_cores = plan_replicas(
        [ModelConfig(name="efficientnet-lite0", cpus_per_replica=0.5)],
        {"CPU": 2, "neuron_cores": 4},
        reserved_cpus=1,
    )
    assert on_cores["efficientnet-lite0"].replicas == 4


def test_an_autoscaled_model_starts_at_its_minimum_and_shares_no_count() -> None:
    scaled = plan({"CPU": 4, "neuron_cores": 2}, autoscaling={"min_replicas": 1, "max_replicas": 8})
    assert scaled == ReplicaPlan(DeviceKind.NEURON_CORE, 1, 1.0)  # max may exceed today's cores
    models = [
        ModelConfig(name="efficientnet-lite0", autoscaling={"max_replicas": 4}),  # type: ignore[arg-type]
        ModelConfig(name="resnet50", autoscaling={"max_replicas": 4}),  # type: ignore[arg-type]
    ]
    plans = plan_replicas(models, {"CPU": 4, "neuron_cores": 4})
    assert [p.replicas for p in plans.values()] == [1, 1]
