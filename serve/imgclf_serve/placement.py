"""Which core kind each model's replicas hold, how many replicas, and what to ask Ray for."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from imgclf_serve.devices import DeviceKind
from imgclf_serve.settings import BACKEND_DEVICE, DeviceChoice, IngressConfig, ModelConfig

# The Ray resource that stands for one core of each kind.
RAY_RESOURCE = {
    DeviceKind.NEURON_CORE: "neuron_cores",
    DeviceKind.GPU: "GPU",
    DeviceKind.CPU: "CPU",
}


@dataclass(frozen=True)
class ReplicaPlan:
    """How one model deployment is placed: `replicas` replicas, each pinned to one core."""

    device_kind: DeviceKind
    replicas: int
    cpus_per_replica: float

    def ray_actor_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": self.cpus_per_replica}
        if self.device_kind is DeviceKind.NEURON_CORE:
            options["resources"] = {RAY_RESOURCE[DeviceKind.NEURON_CORE]: 1}
        elif self.device_kind is DeviceKind.GPU:
            options["num_gpus"] = 1
        return options


@dataclass(frozen=True)
class IngressPlan:
    """How many ClassifierIngress replicas, and the CPUs each reserves."""

    replicas: int
    cpus_per_replica: float

    @property
    def cpus(self) -> float:
        return self.replicas * self.cpus_per_replica


def plan_ingress(config: IngressConfig, nodes: list[dict[str, float]]) -> IngressPlan:
    """Resolve `replicas: null` against the resources of each node: on every node with CPUs
    (not a head started with num-cpus 0), one replica per `cores_per_replica` model cores of
    the node's accelerator kind (NeuronCores, else GPUs, else CPU slots), at least one."""
    replicas = config.replicas
    if replicas is None:
        replicas = sum(
            max(1, math.ceil(_model_cores(node) / config.cores_per_replica))
            for node in nodes
            if node.get("CPU", 0) > 0
        )
        if replicas == 0:
            raise ValueError(
                "no node has CPUs for the ingress now; set `ingress.replicas` (e.g. when "
                "worker nodes are added on demand)"
            )
    return IngressPlan(replicas, config.cpus_per_replica)


def _model_cores(node: dict[str, float]) -> float:
    for resource in (RAY_RESOURCE[DeviceKind.NEURON_CORE], RAY_RESOURCE[DeviceKind.GPU]):
        if node.get(resource, 0) >= 1:
            return node[resource]
    return node.get("CPU", 0)


def plan_replicas(
    models: list[ModelConfig], cluster_resources: dict[str, float], reserved_cpus: float = 0
) -> dict[str, ReplicaPlan]:
    """Resolve `device: auto` and `replicas: null` against the cluster's resources; CPU slots
    exclude `reserved_cpus` (what the ingress reserves)."""
    if reserved_cpus:
        cluster_resources = {
            **cluster_resources,
            "CPU": max(0.0, cluster_resources.get("CPU", 0) - reserved_cpus),
        }
    kinds = {model.name: _device_kind(model, cluster_resources) for model in models}
    sharing = Counter(
        kind
        for model, kind in zip(models, kinds.values(), strict=True)
        if model.replicas is None and model.autoscaling is None
    )
    plans = {}
    for model in models:
        kind = kinds[model.name]
        replicas = model.replicas
        if model.autoscaling is not None:  # Serve starts with the minimum and follows the load
            replicas = model.autoscaling.min_replicas
        elif replicas is None:
            if sharing[kind] > 1:
                raise ValueError(
                    f"several models run on {kind.value} with `replicas` unset; set `replicas` "
                    "for each so they do not all claim every core"
                )
            replicas = _cores_in_cluster(model, kind, cluster_resources)
        plans[model.name] = ReplicaPlan(kind, replicas, model.cpus_per_replica)
    return plans


def _device_kind(model: ModelConfig, cluster_resources: dict[str, float]) -> DeviceKind:
    if model.device is not DeviceChoice.AUTO:
        return DeviceKind(model.device.value)
    needs = BACKEND_DEVICE.get(model.backend)
    if needs is DeviceChoice.NEURON_CORE or cluster_resources.get("neuron_cores", 0) >= 1:
        return DeviceKind.NEURON_CORE
    if needs is DeviceChoice.GPU or cluster_resources.get("GPU", 0) >= 1:
        return DeviceKind.GPU
    return DeviceKind.CPU


def _cores_in_cluster(
    model: ModelConfig, kind: DeviceKind, cluster_resources: dict[str, float]
) -> int:
    resource = RAY_RESOURCE[kind]
    available = cluster_resources.get(resource, 0)
    if kind is DeviceKind.CPU:
        if model.cpus_per_replica <= 0:
            raise ValueError(
                f"model {model.name}: set `replicas` when cpus_per_replica is 0 on device cpu"
            )
        count = math.floor(available / model.cpus_per_replica)
    else:
        count = math.floor(available)
    if count < 1:
        raise ValueError(
            f"model {model.name}: the cluster has {available:g} {resource} now, so `replicas` "
            "cannot default to one per core; set `replicas` (e.g. when nodes are added on demand)"
        )
    return count
