"""front.py: the environment each serving front needs, and why local clusters get ports of
their own for direct ingress."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from imgclf_serve.front import (
    MAX_MESSAGE_BYTES,
    Front,
    NodePorts,
    Transport,
    cluster_env,
    node_env,
)
from imgclf_tools.ports import free_port, free_port_block


def test_haproxy_front_turns_on_haproxy_and_direct_ingress_with_64_mib_messages() -> None:
    env = cluster_env(Front.HAPROXY, Transport.ACTOR)
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert env["RAY_SERVE_USE_GRPC_BY_DEFAULT"] == "0"
    assert env["RAY_SERVE_GRPC_MAX_MESSAGE_SIZE"] == str(MAX_MESSAGE_BYTES)
    assert env["RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH"] == str(MAX_MESSAGE_BYTES)
    assert env["RAY_SERVE_HAPROXY_H2_FE_MAX_CONCURRENT_STREAMS"] == "1000"
    assert MAX_MESSAGE_BYTES > 64 * 1024 * 1024


def test_proxy_front_turns_both_off_and_grpc_transport_is_selectable() -> None:
    env = cluster_env(Front.PROXY, Transport.GRPC)
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "0"
    assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "0"
    assert env["RAY_SERVE_USE_GRPC_BY_DEFAULT"] == "1"


def test_node_env_keeps_haproxy_files_and_ingress_ports_per_node(tmp_path: Path) -> None:
    ports = NodePorts(1, 2, range(20000, 20064), range(20064, 20128), 3, 4)
    env = node_env(Front.HAPROXY, state_dir=tmp_path, ports=ports)
    assert all(v.startswith(str(tmp_path)) for k, v in env.items() if k.endswith(("_LOC", "PATH")))
    assert env["RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT"] == "20064"
    assert env["RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT"] == "20127"
    assert env["RAY_SERVE_FALLBACK_PROXY_GRPC_PORT"] == "4"
    assert node_env(Front.PROXY, state_dir=tmp_path, ports=ports) == {}


def test_port_blocks_are_free_and_distinct() -> None:
    first, second = free_port_block(64), free_port_block(64)
    assert len(first) == 64 and set(first).isdisjoint(second)


def test_single_ports_are_distinct_and_outside_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)  # never the same port twice, bound or not
    assert all(61000 <= port <= 65535 for port in ports)


def test_ray_2_60_direct_ingress_socket_option_leaves_so_reuseport_on() -> None:
    """The reproduction behind NodePorts: Ray 2.60 starts direct-ingress gRPC servers with
    ("grpc.so_reuseport", "0") (ray/serve/_private/grpc_util.py); gRPC reads the option only
    as an integer, so a second server binds the same port. With the integer 0 it is refused.
    If this test fails, Ray or gRPC changed and the per-node port ranges may be dropped."""

    async def second_binds(option: object) -> bool:
        port = free_port()
        first = grpc.aio.server(options=[("grpc.so_reuseport", option)])
        second = grpc.aio.server(options=[("grpc.so_reuseport", option)])
        first.add_insecure_port(f"[::]:{port}")
        try:
            second.add_insecure_port(f"[::]:{port}")
            return True
        except RuntimeError:
            return False
        finally:
            await first.stop(None)
            await second.stop(None)

    assert asyncio.run(second_binds("0")) is True
    assert asyncio.run(second_binds(0)) is False
