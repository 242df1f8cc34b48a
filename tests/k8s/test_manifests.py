"""The Kubernetes manifests, offline: every overlay builds with kubectl kustomize, every object
validates against the real schemas (built-in kinds with kubernetes-validate --strict, CRD kinds
against the vendored KubeRay, Karpenter and prometheus-operator CRDs), and the pieces agree with
each other and with the Serve config. No API server exists here: this is what can be checked."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import jsonschema
import kubernetes_validate
import pytest

from tests.k8s.manifests import (
    NEURON_OVERLAYS,
    OVERLAYS,
    ROOT,
    Doc,
    build,
    crd_schema,
    of_kind,
    one,
    pod_specs,
    rayservice,
    serve_config,
    worker_group,
)

KUBERNETES_VERSION = "1.33.0"
CRD_GROUPS = ("ray.io", "karpenter.sh", "karpenter.k8s.aws", "monitoring.coreos.com")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_kinds_validate_strictly(overlay: str) -> None:
    checked = 0
    for doc in build(overlay):
        if doc["apiVersion"].split("/")[0] in CRD_GROUPS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_kinds_validate_against_their_crds(overlay: str) -> None:
    checked = set()
    for doc in build(overlay):
        group, _, version = doc["apiVersion"].partition("/")
        if group not in CRD_GROUPS:
            continue
        schema = crd_schema(doc["kind"], group, version)
        jsonschema.validate(doc, schema)
        checked.add(doc["kind"])
    expected = {"RayService"} | (
        {"NodePool", "EC2NodeClass", "PodMonitor"} if overlay in NEURON_OVERLAYS else set()
    )
    assert checked == expected


def test_the_crd_check_catches_a_misspelt_field() -> None:
    doc = json.loads(json.dumps(rayservice("inf2")))
    doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replica"] = 1
    with pytest.raises(jsonschema.ValidationError, match="replica"):
        jsonschema.validate(doc, crd_schema("RayService", "ray.io", "v1"))


def test_embedded_serve_configs_are_the_serve_config_file() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "k8s.py"), "check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout
    sys.path.insert(0, str(ROOT / "scripts"))
    import k8s

    base = (ROOT / "k8s" / "base" / "rayservice.yaml").read_text()
    assert k8s.embedded(base) == (ROOT / "serve" / "serve_config.yaml").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serve_config_import_paths_resolve(overlay: str) -> None:
    config = serve_config(overlay)
    for app in config["applications"]:
        module, _, attribute = app["import_path"].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    for function in config["grpc_options"]["grpc_servicer_functions"]:
        module, _, attribute = function.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_fit_the_worker_group(overlay: str) -> None:
    """Serve's autoscaling bounds are the worker group's, in cores: min_replicas fill the
    minimum workers' cores, max_replicas the maximum's; each worker's CPUs hold its share of
    model and ingress replicas."""
    cluster = rayservice(overlay)["spec"]["rayClusterConfig"]
    group = worker_group(overlay)
    (container,) = group["template"]["spec"]["containers"]
    limits = container["resources"]["limits"]
    (app,) = serve_config(overlay)["applications"]
    (model,) = app["args"]["models"]
    assert "replicas" not in model  # replicas follow the load
    scaling = model["autoscaling"]
    per_worker = int(limits.get("aws.amazon.com/neuroncore", 0)) or 2  # cpu: 2 CPU slots
    assert scaling["min_replicas"] == per_worker * group["minReplicas"]
    assert scaling["max_replicas"] == per_worker * group["maxReplicas"]
    assert group["replicas"] == group["minReplicas"]
    assert cluster["enableInTreeAutoscaling"] is True
    ingress = app["args"]["ingress"]
    cpus = per_worker * model["cpus_per_replica"]
    cpus += ingress["replicas"] / group["minReplicas"] * ingress.get("cpus_per_replica", 0.5)
    assert cpus <= float(limits["cpu"])
    assert group["rayStartParams"] == {}
    assert (
        container["resources"]["requests"] == limits
    )  # Guaranteed QoS: no CPU throttling surprises


@pytest.mark.parametrize("overlay", NEURON_OVERLAYS)
def test_pods_land_on_a_nodepool_that_exists_and_tolerate_its_taints(overlay: str) -> None:
    docs = build(overlay)
    pools = {pool["metadata"]["name"]: pool for pool in of_kind(docs, "NodePool")}
    for name, spec in pod_specs(docs):
        selector = spec.get("nodeSelector", {})
        pool_name = selector.get("karpenter.sh/nodepool")
        pool_label = selector.get("imgclf.io/pool")
        assert pool_name or pool_label, f"{name} has no NodePool selector"
        (pool,) = (
            p
            for p in pools.values()
            if p["metadata"]["name"] == pool_name
            or p["spec"]["template"]["metadata"]["labels"].get("imgclf.io/pool") == pool_label
        )
        template = pool["spec"]["template"]["spec"]
        requirements = {r["key"]: r for r in template["requirements"]}
        for key, value in selector.items():
            if key in requirements:
                assert value in requirements[key]["values"], f"{name}: {key}={value}"
        tolerated = {t["key"] for t in spec.get("tolerations", [])}
        for taint in template.get("taints", []):
            assert taint["key"] in tolerated, f"{name} does not tolerate {taint['key']}"
        node_class = template["nodeClassRef"]["name"]
        assert one(docs, "EC2NodeClass", node_class)


# NeuronCores per accelerator (EC2 accelerated instance types: Inferentia2 has 2).
CORES_PER_DEVICE = {"inf2": 2}


@pytest.mark.parametrize("overlay", NEURON_OVERLAYS)
def test_workers_take_whole_one_device_nodes_so_the_default_scheduler_places_them(
    overlay: str,
) -> None:
    """Without the Neuron scheduler extender, a pod that takes part of a node's cores may get
    cores of different devices; a worker that takes every core of a one-device node cannot."""
    docs = build(overlay)
    template = worker_group(overlay)["template"]
    assert "schedulerName" not in template["spec"]  # the default scheduler
    assert not [d for d in docs if "scheduler" in d["metadata"]["name"]]
    (container,) = template["spec"]["containers"]
    cores = int(container["resources"]["limits"]["aws.amazon.com/neuroncore"])
    pool = one(docs, "NodePool", template["spec"]["nodeSelector"]["karpenter.sh/nodepool"])
    requirements = {r["key"]: r for r in pool["spec"]["template"]["spec"]["requirements"]}
    devices = requirements["karpenter.k8s.aws/instance-accelerator-count"]
    assert (devices["operator"], devices["values"]) == ("In", ["1"])
    (family,) = requirements["karpenter.k8s.aws/instance-family"]["values"]
    assert cores == CORES_PER_DEVICE[family]


def kuberay_serve_service(overlay: str) -> Doc:
    """The Service KubeRay builds from serveService, as its BuildServeService does (a stand-in:
    no operator or API server runs here): the head container's ports named serve or serve-*,
    each replaced by the serveService port of the same name; the selector its own (the active
    RayCluster, ray.io/serve "true")."""
    spec = rayservice(overlay)["spec"]
    head = spec["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    given = {port["name"]: port for port in spec["serveService"]["spec"]["ports"]}
    serving = [p for p in head["ports"] if p["name"] == "serve" or p["name"].startswith("serve-")]
    ports = [given.get(p["name"], {"name": p["name"], "port": p["containerPort"]}) for p in serving]
    selector = {"ray.io/cluster": "<active cluster>", "ray.io/serve": "true"}
    return {"metadata": spec["serveService"]["metadata"], "ports": ports, "selector": selector}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_reach_the_workers_grpc_port_and_follow_the_active_cluster(overlay: str) -> None:
    docs = build(overlay)
    spec = rayservice(overlay)["spec"]
    group = worker_group(overlay)
    (container,) = group["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    # KubeRay labels worker pods ray.io/serve=true and with their cluster's name
    labels = group["template"]["metadata"]["labels"] | {
        "ray.io/node-type": "worker", "ray.io/serve": "true", "ray.io/cluster": "<active cluster>"
    }  # fmt: skip
    nlb = kuberay_serve_service(overlay)
    assert nlb["metadata"]["name"] == "imgclf-grpc"
    assert [(p["name"], p["port"], p["targetPort"]) for p in nlb["ports"]] == [
        ("serve-grpc", 9000, ports["serve-grpc"])
    ]  # only gRPC reaches the NLB
    assert nlb["selector"].items() <= labels.items()
    assert spec["excludeHeadPodFromServeSvc"] is True
    services = [s for s in of_kind(docs, "Service") if s["metadata"]["name"].startswith("imgclf")]
    (headless,) = services  # the NLB Service is KubeRay's, not a manifest's
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= labels.items()
    assert headless["spec"]["selector"]["ray.io/serve"] == "true"
    for port in headless["spec"]["ports"]:
        assert ports[port["targetPort"]] == port["port"] == 9000
    probe = container["readinessProbe"]["grpc"]
    assert probe["port"] == ports["serve-grpc"]  # ready = grpc.health.v1 SERVING


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_terminating_worker_serves_until_the_nlb_and_clients_let_it_go(overlay: str) -> None:
    spec = rayservice(overlay)["spec"]
    pod = worker_group(overlay)["template"]["spec"]
    (container,) = pod["containers"]
    (sleep_s,) = [int(a) for a in container["lifecycle"]["preStop"]["exec"]["command"][1:]]
    annotations = spec["serveService"]["metadata"]["annotations"]
    attributes = annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"]
    deregistration_s = int(attributes.split("deregistration_delay.timeout_seconds=")[1])
    assert sleep_s > deregistration_s  # the NLB stops sending before the pod stops serving
    # and Ray's own SIGTERM drain (30 s by default) still fits in the grace period
    assert pod["terminationGracePeriodSeconds"] >= sleep_s + 30
    # the old cluster outlives the switch by more than any connection opened before it
    assert spec["rayClusterDeletionDelaySeconds"] >= sleep_s + deregistration_s
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    namespace = one(build(overlay), "Namespace", "imgclf")
    assert namespace["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_single_worker_head_node_or_disruption_takes_serving_down(overlay: str) -> None:
    docs = build(overlay)
    spec = rayservice(overlay)["spec"]["rayClusterConfig"]
    group = worker_group(overlay)
    assert group["minReplicas"] >= 2 and group["replicas"] >= 2
    (pdb,) = of_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    worker_labels = group["template"]["metadata"]["labels"] | {"ray.io/node-type": "worker"}
    assert pdb["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()
    head = spec["headGroupSpec"]["template"]
    assert head["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] == "true"
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # no ingress on the head
    if overlay in NEURON_OVERLAYS:
        pool = one(docs, "NodePool", "inf")
        assert pool["spec"]["disruption"]["budgets"] == [{"nodes": "1"}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_ray_container_has_shared_memory_for_the_object_store(overlay: str) -> None:
    for name, pod in pod_specs((rayservice(overlay),)):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory"}, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned_and_no_secret_is_committed(overlay: str) -> None:
    docs = build(overlay)
    for name, spec in pod_specs(docs):
        for container in spec.get("containers", []):
            image = container["image"]
            repository, _, tag = image.rpartition(":")
            assert repository and tag and tag != "latest" and "/" not in tag, f"{name}: {image}"
    assert of_kind(docs, "Secret") == []
    images = {
        c["image"] for _, s in pod_specs(docs) for c in s["containers"] if "imgclf:" in c["image"]
    }
    assert images == {f"123456789012.dkr.ecr.us-west-2.amazonaws.com/imgclf:0.1.0-{overlay}"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_pods_run_as_non_root_without_privileges(overlay: str) -> None:
    for name, spec in pod_specs((rayservice(overlay),)):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_network_policy_opens_grpc_and_keeps_ray_ports_inside(overlay: str) -> None:
    (policy,) = of_kind(build(overlay), "NetworkPolicy")
    open_to_all = [rule for rule in policy["spec"]["ingress"] if "from" not in rule]
    assert open_to_all == [{"ports": [{"port": 9000, "protocol": "TCP"}]}]
    restricted = {
        port["port"] for rule in policy["spec"]["ingress"] for port in rule.get("ports", [])
    }
    assert 6379 not in restricted and 10001 not in restricted  # GCS, Ray client: pods only


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_token_auth_stays_on(overlay: str) -> None:
    cluster = rayservice(overlay)["spec"]["rayClusterConfig"]
    assert cluster["authOptions"] == {"mode": "token"}
    for name, spec in pod_specs((rayservice(overlay),)):
        for container in spec["containers"]:
            env = {e["name"] for e in container.get("env", [])}
            assert not env & {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}, f"{name}: set by KubeRay"


@pytest.mark.parametrize("overlay", NEURON_OVERLAYS)
def test_the_dashboards_go_to_kube_prometheus_stacks_grafana(overlay: str) -> None:
    docs = build(overlay)
    (dashboards,) = (
        cm
        for cm in of_kind(docs, "ConfigMap")
        if cm["metadata"]["name"].startswith("imgclf-dashboards")
    )
    for name, text in dashboards["data"].items():
        assert text == (ROOT / "k8s" / "observability" / "dashboards" / name).read_text()
    # kube-prometheus-stack's Grafana loads them (its sidecar's label); no Grafana of our own,
    # and the shared monitoring namespace is not ours to create (or to delete with -k)
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboards["metadata"]["namespace"] == "monitoring"
    assert [d for d in of_kind(docs, "Deployment") if "grafana" in d["metadata"]["name"]] == []
    assert [n["metadata"]["name"] for n in of_kind(docs, "Namespace")] == ["imgclf"]
    monitors = {m["metadata"]["name"]: m for m in of_kind(docs, "PodMonitor")}
    assert monitors["imgclf-ray"]["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    neuron_monitor = one(docs, "DaemonSet", "neuron-monitor")
    (nm,) = neuron_monitor["spec"]["template"]["spec"]["containers"]
    assert {p["name"] for p in nm["ports"]} == {"metrics"}


def test_the_builtin_check_catches_a_misspelt_field() -> None:
    deployment = json.loads(json.dumps(one(build("inf2"), "DaemonSet", "neuron-device-plugin")))
    deployment["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_ray_container_runs_the_default_serving_front(overlay: str) -> None:
    """HAProxy + direct ingress, the default transport and the message caps, exactly as a
    local cluster gets them (front.cluster_env)."""
    from imgclf_serve.front import (
        DEFAULT_FRONT,
        DEFAULT_TRANSPORT,
        MAX_MESSAGE_BYTES,
        MESSAGE_SIZE_ENV,
        cluster_env,
    )

    wanted = cluster_env(DEFAULT_FRONT, DEFAULT_TRANSPORT)
    for name, spec in pod_specs((rayservice(overlay),)):
        (container,) = spec["containers"]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        assert {key: env.get(key) for key in wanted} == wanted, name
        assert env[MESSAGE_SIZE_ENV] == str(MAX_MESSAGE_BYTES), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_readiness_probes_wait_longer_than_the_server_itself(overlay: str) -> None:
    """A grpc.health.v1 Check pings every model replica and waits up to
    HEALTH_PING_TIMEOUT_S for them; a probe that gives up sooner marks a busy pod unready."""
    from imgclf_serve.ingress import HEALTH_PING_TIMEOUT_S

    probes = 0
    for name, spec in pod_specs((rayservice(overlay),)):
        (container,) = spec["containers"]
        probe = container.get("readinessProbe")
        if probe and "grpc" in probe:
            probes += 1
            assert probe["timeoutSeconds"] >= HEALTH_PING_TIMEOUT_S + 2, name
    assert probes >= 1
