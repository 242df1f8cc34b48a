"""The NetworkPolicy's allowed flows, computed by a policy analyzer nobody here wrote (IBM's
network-config-analyzer, `nca`, in .venv-nca: `make nca`) over a model of the cluster: the Ray
pods as KubeRay labels them from the overlay's RayService (two workers, the head), the
Prometheus and KubeRay operator pods in the namespaces the policy names, an application pod in
another namespace, and addresses outside the cluster (clients through the NLB, kubelet
probes). Each flow imgclf needs is allowed, and nothing else reaches the Ray pods."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.manifests import NEURON_OVERLAYS, ROOT, build, of_kind

NCA = ROOT / ".venv-nca" / "bin" / "nca"
NAMESPACE = "imgclf"
OUTSIDE = "0.0.0.0-255.255.255.255"
ALL = frozenset({"all"})
PEERS = {  # namespace: pod, for each party outside imgclf's namespace
    "monitoring": "prometheus",
    "kuberay-system": "kuberay-operator",
    "apps": "client",
}


def kuberay_labels(template: dict[str, Any], node_type: str, group: str) -> dict[str, str]:
    """The labels KubeRay gives a Ray pod (ray-operator common/pod.go, labelPod): its own,
    then the template's, which override all but node type, group and cluster."""
    labels = {
        "ray.io/is-ray-node": "yes",
        "ray.io/cluster": "imgclf-abcde",
        "ray.io/node-type": node_type,
        "ray.io/group": group,
        "ray.io/identifier": f"imgclf-abcde-{node_type}",
        "app.kubernetes.io/name": "kuberay",
        "app.kubernetes.io/created-by": "kuberay-operator",
    }
    fixed = {"ray.io/node-type", "ray.io/group", "ray.io/cluster"}
    labels.update(
        {k: v for k, v in template["metadata"].get("labels", {}).items() if k not in fixed}
    )
    return labels


def pod(name: str, namespace: str, labels: dict[str, str], ports: list[int]) -> dict[str, Any]:
    container = {"name": "c", "image": "x", "ports": [{"containerPort": p} for p in ports]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [container]},
    }


def cluster_model(overlay: str) -> list[dict[str, Any]]:
    (service,) = of_kind(build(overlay), "RayService")
    ray = service["spec"]["rayClusterConfig"]
    head = ray["headGroupSpec"]["template"]
    (workers,) = ray["workerGroupSpecs"]

    def ports(template: dict[str, Any]) -> list[int]:
        (container,) = template["spec"]["containers"]
        return [p["containerPort"] for p in container.get("ports", [])]

    namespaces = [NAMESPACE, *PEERS]
    return [
        *(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
            }
            for ns in namespaces
        ),
        pod("head", NAMESPACE, kuberay_labels(head, "head", "headgroup"), ports(head)),
        *(
            pod(
                f"worker-{i}",
                NAMESPACE,
                kuberay_labels(workers["template"], "worker", workers["groupName"]),
                ports(workers["template"]),
            )
            for i in (1, 2)
        ),
        *(pod(name, ns, {"app": name}, []) for ns, name in PEERS.items()),
    ]


def allowed_flows(overlay: str, tmp_path: Path) -> dict[tuple[str, str], frozenset[str]]:
    """(source, destination) -> TCP ports allowed ({"all"}: every connection), as nca
    computes them; sources and destinations are "namespace/pod" or OUTSIDE."""
    if not NCA.exists():
        pytest.fail(f"{NCA} is missing: run `make nca`")
    policies = tmp_path / "policies.yaml"
    policies.write_text(yaml.safe_dump_all(of_kind(build(overlay), "NetworkPolicy")))
    resources = tmp_path / "resources.yaml"
    resources.write_text(yaml.safe_dump_all(cluster_model(overlay)))
    done = subprocess.run(
        [str(NCA), "--connectivity", str(policies), "--resource_list", str(resources),
         "--output_format", "txt_no_fw_rules"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    flows = {}
    for line in done.stdout.splitlines():
        found = re.fullmatch(r"(\S+?)(?:\[Pod\])? => (\S+?)(?:\[Pod\])? : (.+)", line.strip())
        if found:
            source, destination, connection = found.groups()
            ports = re.search(r"dst_ports:([\d,\-]+)", connection)
            if connection == "All connections":
                flows[source, destination] = ALL
            elif ports and "protocols:TCP" in connection:
                flows[source, destination] = frozenset(ports.group(1).split(","))
            else:
                raise AssertionError(f"unexpected connection in nca's output: {line}")
    return flows


@pytest.mark.parametrize("overlay", NEURON_OVERLAYS)
def test_each_flow_imgclf_needs_is_allowed_and_nothing_else_reaches_it(
    overlay: str, tmp_path: Path
) -> None:
    flows = allowed_flows(overlay, tmp_path)
    ray_pods = ["imgclf/head", "imgclf/worker-1", "imgclf/worker-2"]
    expected = {}
    for destination in ray_pods:
        # Anyone: gRPC 9000 (clients through the NLB and in-cluster, the NLB's health checks,
        # the kubelet's gRPC readiness probe).
        expected[OUTSIDE, destination] = frozenset({"9000"})
        expected["apps/client", destination] = frozenset({"9000"})
        # Prometheus: metrics; the KubeRay operator: the dashboard (Serve config, status).
        expected["monitoring/prometheus", destination] = frozenset({"8080", "9000"})
        expected["kuberay-system/kuberay-operator", destination] = frozenset(
            {"8265", "52365", "9000"}
        )
        # Ray pods among themselves: GCS 6379, object transfer, workers' and direct
        # ingress's ports (HAProxy to the ingress replicas of every pod).
        for source in ray_pods:
            if source != destination:
                expected[source, destination] = ALL
    reaching_ray = {pair: ports for pair, ports in flows.items() if pair[1] in ray_pods}
    assert reaching_ray == expected
    # The head's GCS and Ray client ports are open to Ray pods only.
    assert not any(
        {"6379", "10001"} & ports
        for (source, destination), ports in reaching_ray.items()
        if destination == "imgclf/head" and not source.startswith("imgclf/")
    )


@pytest.mark.parametrize("overlay", NEURON_OVERLAYS)
def test_the_policy_passes_the_analyzers_sanity_check(overlay: str, tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(yaml.safe_dump_all(of_kind(build(overlay), "NetworkPolicy")))
    resources = tmp_path / "resources.yaml"
    resources.write_text(yaml.safe_dump_all(cluster_model(overlay)))
    done = subprocess.run(
        [str(NCA), "--sanity", str(policies), "--resource_list", str(resources)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0 and "passed sanity check" in done.stdout, done.stdout
