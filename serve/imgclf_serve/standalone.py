"""Run imgclf on one machine in the foreground: a Ray head node with the serving front's
settings, a Serve config deployed on it, until SIGTERM or SIGINT stops everything it started.
It is the containers' command (docker/Dockerfile.*: `docker run -p 9000:9000 imgclf:...`) and
the `imgclf-serve` command of the imgclf-serve distribution.

    imgclf-serve --config serve_config.yaml [--host 0.0.0.0] [--grpc-port 9000]
                 [--http-port 8000] [--metrics-port 8080] [--node-ip-address 127.0.0.1]
                 [--temp-dir DIR] [--num-cpus N] [--resources JSON] [--ray-start-args "..."]

On Kubernetes, KubeRay starts Ray and deploys the config itself (k8s/); on a developer's
machine `make serve` runs a background cluster instead (tools/imgclf_tools/local_cluster.py).

Ray runs as `ray start --head --block`, a child of this process. On SIGTERM or SIGINT the
application is shut down first (`serve shutdown`: calls in flight finish, within Serve's
graceful shutdown timeouts), then Ray, which stops every process it started. Ray's own drain on
SIGTERM is off here (RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0): a lone node has nowhere to move
its replicas, so it would only wait out its timeout. The serving front's settings
(imgclf_serve.front.cluster_env) are defaults: a variable already in the environment wins.
Ray's token auth gets a token of its own in the temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgclf_serve.front import DEFAULT_FRONT, DEFAULT_TRANSPORT, cluster_env

GCS_PORT = 6379
START_TIMEOUT_S = 600.0
SERVE_SHUTDOWN_TIMEOUT_S = 60.0
BIN = Path(sys.executable).parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgclf-serve", description="Run imgclf on this machine until SIGTERM or SIGINT."
    )
    parser.add_argument("--config", type=Path, required=True, help="a Serve config file")
    parser.add_argument(
        "--host",
        help="the interface the gRPC and HTTP front listens on (Serve's http_options.host); "
        "default: as the config says, else every interface",
    )
    parser.add_argument("--grpc-port", type=int, default=9000)
    parser.add_argument("--http-port", type=int, help="default: as the config says (8000)")
    parser.add_argument("--metrics-port", type=int, default=8080, help="Ray's Prometheus port")
    parser.add_argument(
        "--node-ip-address",
        default="127.0.0.1",
        help="the address of Ray's node, for Ray's own traffic (one machine: 127.0.0.1)",
    )
    parser.add_argument("--gcs-port", type=int, default=GCS_PORT)
    parser.add_argument("--temp-dir", type=Path, help="Ray's temp dir; default: a new one")
    parser.add_argument("--num-cpus", type=int, help="CPUs for Ray; default: all")
    parser.add_argument(
        "--resources", help="custom resources as JSON, e.g. '{\"neuron_cores\": 2}'"
    )
    parser.add_argument(
        "--ray-start-args", default="", help="more `ray start` options, e.g. ports to use"
    )
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT_S, help="seconds to SERVING")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.config.is_file():
        print(f"imgclf-serve: no Serve config at {args.config}", file=sys.stderr)
        return 2
    # HAProxy's socket paths are built under the temp dir and may not exceed 97 bytes.
    temp_dir = args.temp_dir or Path(tempfile.mkdtemp(prefix="imgclf-", dir="/tmp"))
    temp_dir.mkdir(parents=True, exist_ok=True)
    env = _environment(temp_dir)
    address = f"{args.node_ip_address}:{args.gcs_port}"
    stopping = _record_stop_signals()
    ray = subprocess.Popen(_ray_start(args, temp_dir), env=env)
    try:
        _wait_for_ray(ray, address, env, stopping)
        deployed = _deployable_config(args, temp_dir)
        serve = [str(BIN / "serve"), "run", "--non-blocking", f"--address={address}"]
        subprocess.run([*serve, str(deployed)], env=env, check=True)
        _wait_serving(ray, f"127.0.0.1:{args.grpc_port}", args.timeout, stopping)
        print(f"imgclf-serve: SERVING gRPC on port {args.grpc_port}", flush=True)
        while ray.poll() is None and not stopping:
            time.sleep(0.2)
        if not stopping:
            print(f"imgclf-serve: Ray exited with {ray.returncode}", file=sys.stderr)
            return 1
        _shutdown_serve(address, env)
        return 0
    except (RuntimeError, subprocess.CalledProcessError, TimeoutError) as exc:
        if stopping:  # stopped while starting
            return 0
        print(f"imgclf-serve: {exc}", file=sys.stderr)
        return 1
    finally:
        if ray.poll() is None:
            ray.send_signal(signal.SIGTERM)
            ray.wait(timeout=60)


def _environment(temp_dir: Path) -> dict[str, str]:
    token = temp_dir / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    return {
        **cluster_env(DEFAULT_FRONT, DEFAULT_TRANSPORT),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        **os.environ,
    }


def _ray_start(args: argparse.Namespace, temp_dir: Path) -> list[str]:
    command = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        f"--node-ip-address={args.node_ip_address}",
        f"--port={args.gcs_port}",
        f"--temp-dir={temp_dir}",
        "--include-dashboard=false",
        f"--metrics-export-port={args.metrics_port}",
        "--disable-usage-stats",
    ]
    if args.num_cpus is not None:
        command.append(f"--num-cpus={args.num_cpus}")
    if args.resources:
        command.append(f"--resources={json.dumps(json.loads(args.resources))}")
    return command + shlex.split(args.ray_start_args)


def _record_stop_signals() -> list[int]:
    """SIGTERM and SIGINT, received from now on (the caller stops in order)."""
    received: list[int] = []

    def record(signum: int, _: FrameType | None) -> None:
        received.append(signum)

    signal.signal(signal.SIGTERM, record)
    signal.signal(signal.SIGINT, record)
    return received


def _shutdown_serve(address: str, env: dict[str, str]) -> None:
    """Shut the application down gracefully: replicas finish the calls they hold."""
    command = [str(BIN / "serve"), "shutdown", "--yes", f"--address={address}"]
    try:
        subprocess.run(command, env=env, capture_output=True, timeout=SERVE_SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print("imgclf-serve: `serve shutdown` timed out; stopping Ray", file=sys.stderr)


def _wait_for_ray(
    ray: subprocess.Popen[bytes], address: str, env: dict[str, str], stopping: list[int]
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not stopping:
        if ray.poll() is not None:
            raise RuntimeError(f"`ray start` exited with {ray.returncode}")
        status = [str(BIN / "ray"), "status", f"--address={address}"]
        if subprocess.run(status, env=env, capture_output=True).returncode == 0:
            return
        time.sleep(1)
    raise TimeoutError(f"Ray did not start at {address} within 120 s")


def _deployable_config(args: argparse.Namespace, temp_dir: Path) -> Path:
    """The Serve config with the ports and interface asked for, where Ray can read it."""
    config = yaml.safe_load(args.config.read_text())
    config.setdefault("grpc_options", {})["port"] = args.grpc_port
    http = config.setdefault("http_options", {})
    if args.http_port is not None:
        http["port"] = args.http_port
    if args.host is not None:
        http["host"] = args.host
    deployed = temp_dir / "serve_config.yaml"
    deployed.write_text(yaml.safe_dump(config, sort_keys=False))
    return deployed


def _wait_serving(
    ray: subprocess.Popen[bytes], target: str, timeout_s: float, stopping: list[int]
) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline and not stopping:
            if ray.poll() is not None:
                raise RuntimeError(f"Ray exited with {ray.returncode} before SERVING")
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(1)
    raise TimeoutError(f"not SERVING on {target} within {timeout_s:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
