"""Build the kustomize overlays (with the real kubectl) and look things up in what they make."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
OVERLAYS = ("inf2", "cpu")
NEURON_OVERLAYS = ("inf2",)
CRDS = ROOT / "tests" / "data" / "crds"

import k8s_tools  # noqa: E402  # from scripts/, on the path through tests/k8s/__init__.py

Doc = dict[str, Any]


@functools.cache
def build(overlay: str) -> tuple[Doc, ...]:
    """`kubectl kustomize k8s/overlays/<overlay>`, parsed."""
    kubectl = k8s_tools.kubectl()
    done = subprocess.run(
        [str(kubectl), "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    (found,) = (d for d in of_kind(docs, kind) if d["metadata"]["name"] == name)
    return found


def rayservice(overlay: str) -> Doc:
    return one(build(overlay), "RayService", "imgclf")


def worker_group(overlay: str) -> Doc:
    (group,) = rayservice(overlay)["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    return group


def serve_config(overlay: str) -> Doc:
    return yaml.safe_load(rayservice(overlay)["spec"]["serveConfigV2"])


def pod_specs(docs: tuple[Doc, ...]) -> Iterator[tuple[str, Doc]]:
    """(a name for messages, pod spec) for every workload and Ray group."""
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] in ("Deployment", "DaemonSet", "StatefulSet"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", spec["template"]["spec"]
        if doc["kind"] == "RayService":
            cluster = spec["rayClusterConfig"]
            yield "RayService head", cluster["headGroupSpec"]["template"]["spec"]
            for group in cluster["workerGroupSpecs"]:
                yield f"RayService {group['groupName']}", group["template"]["spec"]


@functools.cache
def crd_schema(kind: str, group: str, version: str) -> Doc:
    """The CRD's schema for `version`, with unknown fields refused (see `closed`)."""
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind:
            (served,) = (v for v in crd["spec"]["versions"] if v["name"] == version)
            return closed(served["schema"]["openAPIV3Schema"])
    raise LookupError(f"no CRD for {group}/{version} {kind} in {CRDS}")


def closed(schema: Any) -> Any:
    """The schema with unknown fields refused, as the API server prunes/refuses them, except
    where it says x-kubernetes-preserve-unknown-fields."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: closed(value) for key, value in schema.items()}
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        copy.setdefault("additionalProperties", False)
    return copy
