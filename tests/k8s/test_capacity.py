"""Each inf worker pod fits the node Karpenter brings for it, beside the DaemonSets that run
there: its requests against the instance type's allocatable, computed as Karpenter's AWS
provider does for AL2023 (offline: no EC2 or API server here; the figures are restated below
with their sources)."""

from __future__ import annotations

import pytest

from tests.k8s.manifests import NEURON_OVERLAYS, build, of_kind, worker_group

# Instance types the overlays' workers fill (one worker pod per node): vCPUs, memory in MiB
# (EC2 instance types: inf2.xlarge 4 vCPU 16 GiB) and max pods (amazon-vpc-cni-k8s
# misc/eni-max-pods.txt: inf2.xlarge 58).
INSTANCE = {"inf2": ("inf2.xlarge", 4, 16384, 58)}
# Karpenter's AWS provider (its documented defaults, the EKS AMI's formulas): 7.5% of memory
# kept for the VM (vmMemoryOverheadPercent); kube-reserved CPU 6% of the first core, 1% of the
# second, 0.5% of the third and fourth, 0.25% beyond; kube-reserved memory 255 MiB + 11 MiB
# per pod; eviction threshold (memory.available) 100 MiB.
VM_OVERHEAD = 0.075
EVICTION_MIB = 100
# EKS's own DaemonSets on every node, at their default requests (not in these manifests).
EKS_DAEMONSETS = {"aws-node": (25, 0), "kube-proxy": (100, 0)}


def kube_reserved_cpu_m(cores: int) -> float:
    shares = [0.06, 0.01, 0.005, 0.005] + [0.0025] * max(0, cores - 4)
    return 1000 * sum(shares[:cores])


def quantity_m(value: str | int) -> float:
    text = str(value)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def quantity_mib(value: str | int) -> float:
    text = str(value)
    for suffix, factor in (("Gi", 1024), ("Mi", 1), ("Ki", 1 / 1024)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text) / (1024 * 1024)


def requests_on_inf_nodes(overlay: str) -> tuple[float, float]:
    """CPU (m) and memory (MiB) requested by one worker and every DaemonSet that lands there."""
    (container,) = worker_group(overlay)["template"]["spec"]["containers"]
    cpu = quantity_m(container["resources"]["requests"]["cpu"])
    memory = quantity_mib(container["resources"]["requests"]["memory"])
    for daemonset in of_kind(build(overlay), "DaemonSet"):
        spec = daemonset["spec"]["template"]["spec"]
        tolerated = {t.get("key") for t in spec.get("tolerations", [])}
        if "aws.amazon.com/neuron" not in tolerated and {"operator": "Exists"} not in spec.get(
            "tolerations", []
        ):
            continue  # never scheduled on the tainted inf nodes
        for c in spec["containers"]:
            requests = c.get("resources", {}).get("requests", {})
            cpu += quantity_m(requests.get("cpu", 0))
            memory += quantity_mib(requests.get("memory", 0))
    cpu += sum(c for c, _ in EKS_DAEMONSETS.values())
    memory += sum(m for _, m in EKS_DAEMONSETS.values())
    return cpu, memory


@pytest.mark.parametrize("overlay", NEURON_OVERLAYS)
def test_a_worker_and_the_daemonsets_fit_the_node_it_brings(overlay: str) -> None:
    name, cores, memory_mib, max_pods = INSTANCE[overlay]
    allocatable_cpu = cores * 1000 - kube_reserved_cpu_m(cores)
    allocatable_mib = memory_mib * (1 - VM_OVERHEAD) - (255 + 11 * max_pods) - EVICTION_MIB
    cpu, memory = requests_on_inf_nodes(overlay)
    print(f"\n[{name}] requests {cpu:.0f}m / {allocatable_cpu:.0f}m CPU, "
          f"{memory:.0f} / {allocatable_mib:.0f} MiB")  # fmt: skip
    assert cpu <= allocatable_cpu, f"{name}: {cpu}m CPU requested, {allocatable_cpu}m allocatable"
    assert memory <= allocatable_mib, f"{name}: {memory} MiB requested, {allocatable_mib} MiB"


def test_kube_reserved_cpu_follows_the_formula_by_core() -> None:
    # 6% of one core, then 1%, 0.5%, 0.5%, then 0.25% per core: 80m on 4 cores, 120m on 20
    assert kube_reserved_cpu_m(1) == pytest.approx(60)
    assert kube_reserved_cpu_m(4) == pytest.approx(80)
    assert kube_reserved_cpu_m(20) == pytest.approx(120)
