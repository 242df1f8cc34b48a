"""Ray's own autoscaler (v2, as KubeRay runs it) on a local cluster: worker "nodes" are Ray
nodes it starts and stops as processes on this machine, through Ray's fake multi-node
provider, each isolated as LocalCluster.start_worker isolates a node: its own temp dir under
the cluster's, 127.0.0.1, free ports, its own serving-front files and ports.

Ray 2.60's wheel lacks the provider's `example.yaml`, which the provider type
`fake_multinode` reads its defaults from, and the provider would join nodes to GCS port 6379
with Ray's default temp dir and ports; so the provider is loaded as an `external` one, this
module's `LocalNodeProvider`, with a complete config written by `autoscaling_config`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import ray._private.ray_constants as ray_constants
from ray.autoscaler._private.fake_multi_node.node_provider import (
    FAKE_HEAD_NODE_ID,
    FAKE_HEAD_NODE_TYPE,
    FakeMultiNodeProvider,
)
from ray.autoscaler.tags import (
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_NODE_STATUS,
    TAG_RAY_USER_NODE_TYPE,
)

from imgclf_serve.front import Front, Transport
from imgclf_tools.local_cluster import LocalCluster, isolated_front_env
from imgclf_tools.ports import free_port

HEAD_NODE_ID = FAKE_HEAD_NODE_ID
# Environment of the head's `ray start`: the provider refuses to run without
# RAY_FAKE_CLUSTER; the head's node and cloud instance id are the ones the provider reports for
# it; the autoscaler looks at the cluster every second instead of every 5.
HEAD_ENV = {
    "RAY_FAKE_CLUSTER": "1",
    "RAY_enable_autoscaler_v2": "1",
    "RAY_CLOUD_INSTANCE_ID": HEAD_NODE_ID,
    "RAY_OVERRIDE_NODE_ID_FOR_TESTING": HEAD_NODE_ID,
    "AUTOSCALER_UPDATE_INTERVAL_S": "1",
}


@dataclass(frozen=True)
class NodeType:
    """A kind of worker node the autoscaler may start: a KubeRay worker group."""

    name: str
    cpus: float
    resources: dict[str, float]
    min_workers: int
    max_workers: int


def autoscaling_config(
    *,
    gcs_address: str,
    node_root: Path,
    head_resources: dict[str, float],
    node_types: list[NodeType],
    idle_timeout_s: float,
    front: Front,
    transport: Transport,
) -> dict[str, Any]:
    """The autoscaler's cluster config: nodes' folders go under `node_root` (keep it under 25
    characters: a node's serving-front files live in `<node_root>/n<k>`, which must stay under
    28)."""
    workers = {
        kind.name: {
            "resources": {"CPU": kind.cpus, **kind.resources},
            "node_config": {},
            "min_workers": kind.min_workers,
            "max_workers": kind.max_workers,
        }
        for kind in node_types
    }
    return {
        "cluster_name": "imgclf-local",
        "max_workers": sum(kind.max_workers for kind in node_types),
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_s / 60,
        "provider": {
            "type": "external",
            "module": f"{__name__}.LocalNodeProvider",
            "gcs_address": gcs_address,
            "head_node_id": HEAD_NODE_ID,
            "launch_multiple": True,
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "node_root": str(node_root),
            "front": front.value,
            "transport": transport.value,
        },
        "head_node_type": FAKE_HEAD_NODE_TYPE,
        "available_node_types": {
            FAKE_HEAD_NODE_TYPE: {"resources": head_resources, "node_config": {}, "max_workers": 0},
            **workers,
        },
        "auth": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def start_autoscaling(
    cluster: LocalCluster,
    *,
    head_cpus: int,
    node_types: list[NodeType],
    idle_timeout_s: float,
) -> None:
    """Start `cluster`'s head (no accelerator resources) with Ray's autoscaler, which starts
    `node_types`' minimum of workers at once and more when tasks or actors wait for resources;
    `cluster.stop()` stops them all (their folders are under its temp dir)."""
    config = autoscaling_config(
        gcs_address=cluster.address,
        node_root=cluster.temp_dir,
        head_resources={"CPU": head_cpus},
        node_types=node_types,
        idle_timeout_s=idle_timeout_s,
        front=cluster.front,
        transport=cluster.transport,
    )
    path = cluster.temp_dir / "autoscaling.json"
    path.write_text(json.dumps(config, indent=2))
    cluster.start(
        num_cpus=head_cpus, extra_env=HEAD_ENV, extra_args=[f"--autoscaling-config={path}"]
    )


class LocalNodeProvider(FakeMultiNodeProvider):
    """Ray's fake multi-node provider, starting each node as LocalCluster.start_worker would.
    Runs inside the autoscaler's process on the head; its nodes' processes are that process's
    children."""

    def _create_node_with_resources_and_labels(
        self,
        node_config: dict[str, Any],
        tags: dict[str, str],
        count: int,
        resources: dict[str, float],
        labels: dict[str, str],
    ) -> None:
        resources = copy.deepcopy(resources)
        with self.lock:
            node_type = tags[TAG_RAY_USER_NODE_TYPE]
            node_id: str = self._next_hex_node_id()  # type: ignore[no-untyped-call]
            node_dir = Path(self.provider_config["node_root"]) / f"n{self._next_node_id}"
            node_dir.mkdir(parents=True, exist_ok=True)
            front = Front(self.provider_config["front"])
            transport = Transport(self.provider_config["transport"])
            params = ray._private.parameter.RayParams(
                node_ip_address="127.0.0.1",
                gcs_address=self._gcs_address,
                redis_address=self._gcs_address,
                temp_dir=str(node_dir),
                min_worker_port=0,
                max_worker_port=0,
                dashboard_port=None,
                dashboard_agent_listen_port=free_port(),
                metrics_agent_port=free_port(),
                metrics_export_port=free_port(),
                runtime_env_agent_port=free_port(),
                num_cpus=int(resources.pop("CPU", 0)),
                num_gpus=int(resources.pop("GPU", 0)),
                object_store_memory=resources.pop("object_store_memory", None),
                resources=resources,
                labels=labels,
                env_vars={
                    **isolated_front_env(front, transport, node_dir),
                    "RAY_OVERRIDE_NODE_ID_FOR_TESTING": node_id,
                    "RAY_CLOUD_INSTANCE_ID": node_id,
                    "RAY_NODE_TYPE_NAME": node_type,
                    ray_constants.RESOURCES_ENVIRONMENT_VARIABLE: json.dumps(resources),
                    ray_constants.LABELS_ENVIRONMENT_VARIABLE: json.dumps(labels),
                },
            )
            node = ray._private.node.Node(
                params, head=False, shutdown_at_exit=False, spawn_reaper=False
            )
            entry: dict[str, Any] = {
                "tags": {
                    TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
                    TAG_RAY_USER_NODE_TYPE: node_type,
                    TAG_RAY_NODE_NAME: node_id,
                    TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
                    **tags,
                },
                "node": node,
            }
            self._nodes[node_id] = entry
