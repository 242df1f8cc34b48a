"""Run imgclf on a local, self-contained Ray cluster: what `make serve` / `make stop` and
the integration tests use.

    python -m imgclf_tools.local_cluster up [--config serve/serve_config.yaml] [--grpc-port 9000]
    python -m imgclf_tools.local_cluster down
    python -m imgclf_tools.local_cluster status

The cluster gets its own temp dir and auth token (Ray 2.60 turns token auth on), binds its
node to 127.0.0.1, runs no dashboard, and exports metrics on --metrics-port. `down` stops
exactly the processes of that temp dir, by PID, and nothing else Ray runs on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgclf_serve.front import (
    DEFAULT_FRONT,
    DEFAULT_TRANSPORT,
    Front,
    NodePorts,
    Transport,
    cluster_env,
    node_env,
)
from imgclf_tools.ports import INGRESS_PORT_BLOCK, free_port, free_port_block, port_in_use
from imgclf_tools.processes import processes_naming, stop_processes

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "serve" / "serve_config.yaml"
# The longest `stop` waits for the processes to exit and the ports to close.
STOP_SETTLE_S = 60.0
STATE_FILE = REPO_ROOT / ".run" / "local_cluster.json"
RAY_BIN = Path(sys.executable).with_name("ray")
SERVE_BIN = Path(sys.executable).with_name("serve")


def isolated_front_env(front: Front, transport: Transport, node_dir: Path) -> dict[str, str]:
    """The serving front's environment for one node whose files live in `node_dir` and whose
    ports are free ones, so that it shares nothing with another cluster on this machine."""
    ports = NodePorts(
        haproxy_metrics=free_port(),
        haproxy_stats=free_port(),
        ingress_http=free_port_block(INGRESS_PORT_BLOCK),
        ingress_grpc=free_port_block(INGRESS_PORT_BLOCK),
        fallback_http=free_port(),
        fallback_grpc=free_port(),
    )
    return {**cluster_env(front, transport), **node_env(front, state_dir=node_dir, ports=ports)}


@dataclass
class LocalCluster:
    """One single-node Ray cluster with the imgclf Serve application on it."""

    temp_dir: Path
    gcs_port: int
    grpc_port: int
    http_port: int
    metrics_port: int
    front: Front = DEFAULT_FRONT
    transport: Transport = DEFAULT_TRANSPORT

    @classmethod
    def create(
        cls,
        *,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        front: Front = DEFAULT_FRONT,
        transport: Transport = DEFAULT_TRANSPORT,
    ) -> LocalCluster:
        # Short, so that Ray's unix socket paths under it stay within 107 bytes.
        temp_dir = Path(tempfile.mkdtemp(prefix="imgclf-ray-", dir="/tmp"))
        return cls(
            temp_dir=temp_dir,
            gcs_port=free_port(),
            grpc_port=grpc_port or free_port(),
            http_port=free_port(),
            metrics_port=metrics_port or free_port(),
            front=Front(front),
            transport=Transport(transport),
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def token_path(self) -> Path:
        return self.temp_dir / "auth_token"

    def env(self) -> dict[str, str]:
        """Environment for any process that talks to this cluster."""
        env = dict(os.environ)
        env.update(
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(self.token_path),
            RAY_ADDRESS=self.address,
            RAY_USAGE_STATS_ENABLED="0",
        )
        return env

    def front_env(self, node_dir: Path) -> dict[str, str]:
        """Environment of the serving front (front.py) for the node whose temp dir is
        `node_dir`: its files and ports are its own."""
        return isolated_front_env(self.front, self.transport, node_dir)

    def start(
        self,
        *,
        num_cpus: int | None = None,
        resources: dict[str, float] | None = None,
        system_config: dict[str, object] | None = None,
        extra_env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        """Start the head node (the whole cluster). `system_config` sets Ray internals, e.g.
        {"metrics_report_interval_ms": 1000} for metrics that reach Prometheus sooner;
        `extra_env` reaches every Ray process (e.g. RAY_SERVE_THROUGHPUT_OPTIMIZED=1);
        `extra_args` go to `ray start`."""
        self.token_path.write_text(secrets.token_hex(32))
        self.token_path.chmod(0o600)
        if num_cpus is None:
            # At least two CPU slots, so a CPU-only machine still runs two model replicas.
            num_cpus = max(2, os.cpu_count() or 1)
        command = [
            str(RAY_BIN),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={self.gcs_port}",
            f"--temp-dir={self.temp_dir}",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            f"--metrics-export-port={self.metrics_port}",
            f"--num-cpus={num_cpus}",
            "--disable-usage-stats",
        ]
        if resources:
            command.append(f"--resources={json.dumps(resources)}")
        if system_config:
            command.append(f"--system-config={json.dumps(system_config)}")
        command += extra_args or []
        front = self.front_env(self.temp_dir)
        _run(command, {**self.env(), **front, **(extra_env or {})}, "ray start")

    def deploy(self, config_path: Path) -> Path:
        """Deploy a Serve config file with this cluster's ports; returns the file deployed."""
        config = yaml.safe_load(config_path.read_text())
        config.setdefault("grpc_options", {})["port"] = self.grpc_port
        config.setdefault("http_options", {})["port"] = self.http_port
        config["http_options"]["host"] = "127.0.0.1"
        deployed = self.temp_dir / "serve_config.yaml"
        deployed.write_text(yaml.safe_dump(config, sort_keys=False))
        command = [str(SERVE_BIN), "run", "--non-blocking", f"--address={self.address}"]
        _run([*command, str(deployed)], self.env(), "serve run")
        return deployed

    def wait_serving(
        self, timeout_s: float = 600.0, progress: Callable[[str], None] = print
    ) -> None:
        """Block until grpc.health.v1 Check answers SERVING and every replica of every
        deployment is RUNNING (Check needs only `min_ready_replicas` of each model; callers of
        this want the whole application). Every 10 s, read Serve's status: fail early if the
        deploy failed, and pass new status messages (e.g. replicas waiting for resources) to
        `progress`."""
        deadline = time.monotonic() + timeout_s
        next_status_check = time.monotonic() + 10
        seen: set[str] = set()
        with grpc.insecure_channel(self.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                with contextlib.suppress(grpc.RpcError):
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING and (
                        self.fully_deployed()
                    ):
                        return
                if time.monotonic() > next_status_check:
                    next_status_check = time.monotonic() + 10
                    for message in self._deploy_messages():
                        if message not in seen:
                            seen.add(message)
                            progress(f"  {message}")
                time.sleep(1)
        raise TimeoutError(
            f"imgclf did not report SERVING on {self.grpc_target} within {timeout_s:.0f} s; "
            f"logs: {self.temp_dir}/session_latest/logs"
        )

    def _deploy_messages(self) -> list[str]:
        """Serve's status messages for what is not running yet; raises if the deploy failed."""
        script = (
            "import json, ray; from ray import serve; ray.init(logging_level='ERROR'); "
            "apps = serve.status().applications; print(json.dumps({n: [a.status, a.message, "
            "[d.message for d in a.deployments.values() if d.status != 'HEALTHY' and d.message]]"
            " for n, a in apps.items()}))"
        )
        try:
            statuses = self.query(script)
        except RuntimeError:
            return []
        messages = []
        for name, (status, message, deployment_messages) in statuses.items():
            reasons = [_last_exception(m) for m in (message, *deployment_messages) if m]
            if status in ("DEPLOY_FAILED", "UNHEALTHY"):
                raise RuntimeError(f"application {name} is {status}:\n" + "\n".join(reasons))
            messages += reasons
        return messages

    def pids(self) -> list[int]:
        """PIDs of this cluster's processes, worker nodes included: those naming its temp dir
        or its GCS address (the Ray client server names only the latter), and descendants."""
        return processes_naming(str(self.temp_dir), f":{self.gcs_port} ")

    def replica_pids(self, deployment: str, app: str = "imgclf") -> list[int]:
        """PIDs of the Serve replicas of one deployment (Ray names their processes)."""
        prefix = f"ray::ServeReplica:{app}:{deployment}".encode()
        pids = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(prefix):
                    pids.append(pid)
        return pids

    def stop(self, grace_s: float = 3.0, settle_s: float = STOP_SETTLE_S) -> list[int]:
        """Stop every process of this cluster (SIGTERM, then SIGKILL) and return their PIDs
        once none is left and none of its ports accepts connections: processes that appear
        while it stops (a worker Ray was starting) are stopped too, and a script may start
        another cluster on the same ports at once. Raises if that takes over `settle_s`."""
        stopped: list[int] = []
        deadline = time.monotonic() + settle_s
        while True:
            running = self.pids()
            stopped += stop_processes(running, grace_s)
            busy = [port for port in self.ports() if port_in_use(port)]
            if not running and not busy:
                return list(dict.fromkeys(stopped))
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the cluster in {self.temp_dir} did not stop in {settle_s:.0f} s: "
                    f"processes {running}, ports still accepting connections {busy}"
                )
            time.sleep(0.2)

    def ports(self) -> list[int]:
        """The ports this cluster listens on that a caller names: GCS, gRPC, HTTP, metrics."""
        return [self.gcs_port, self.grpc_port, self.http_port, self.metrics_port]

    def start_worker(self, *, num_cpus: int, resources: dict[str, float]) -> WorkerNode:
        """Join one more node to the cluster, on this machine, with its own temp dir (and so
        its own processes): a stand-in for a second host in multi-node tests."""
        worker = WorkerNode(Path(tempfile.mkdtemp(prefix="imgclf-node-", dir="/tmp")))
        command = [
            str(RAY_BIN),
            "start",
            f"--address={self.address}",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={worker.temp_dir}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--num-cpus={num_cpus}",
            f"--resources={json.dumps(resources)}",
            "--disable-usage-stats",
        ]
        front = self.front_env(worker.temp_dir)
        _run(command, {**self.env(), **front}, "ray start (worker node)")
        return worker

    def fully_deployed(self) -> bool:
        """Every deployment HEALTHY with all its replicas RUNNING."""
        try:
            status = self.serve_status()
        except RuntimeError:
            return False
        return bool(status) and all(
            d["status"] == "HEALTHY" and set(d["replicas"]) == {"RUNNING"} for d in status.values()
        )

    def serve_status(self) -> dict[str, dict[str, Any]]:
        """Each deployment of each application: {"status": ..., "replicas": {state: count}},
        keyed "app/deployment", as Serve's controller reports them."""
        script = (
            "import json, ray; from ray import serve; ray.init(logging_level='ERROR'); "
            "v = lambda e: getattr(e, 'value', e); "
            "print(json.dumps({f'{a}/{d}': {'status': v(o.status), 'replicas': "
            "{v(k): n for k, n in o.replica_states.items()}} for a, s in "
            "serve.status().applications.items() for d, o in s.deployments.items()}))"
        )
        status: dict[str, dict[str, Any]] = self.query(script)
        return status

    def query(self, script: str) -> Any:
        """Run a Python snippet that connects with ray.init() (this cluster, through env())
        and prints JSON on a line of its own; returns the last such JSON."""
        result = subprocess.run(
            [sys.executable, "-c", script], env=self.env(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"query of the cluster failed: {result.stderr.strip()[-2000:]}")
        # Ray's driver may print the autoscaler's events ("Resized to 3 CPUs.") after it.
        for line in reversed(result.stdout.strip().splitlines()):
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads(line)
        raise RuntimeError(f"query of the cluster printed no JSON: {result.stdout[-2000:]}")

    def save(self, path: Path = STATE_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = {k: getattr(v, "value", v) for k, v in asdict(self).items()}
        path.write_text(json.dumps({k: str(v) for k, v in fields.items()}, indent=2))

    @classmethod
    def load(cls, path: Path = STATE_FILE) -> LocalCluster | None:
        if not path.is_file():
            return None
        data: dict[str, Any] = json.loads(path.read_text())
        return cls(
            temp_dir=Path(data.pop("temp_dir")),
            front=Front(data.pop("front", DEFAULT_FRONT)),
            transport=Transport(data.pop("transport", DEFAULT_TRANSPORT)),
            **{k: int(v) for k, v in data.items()},
        )


@dataclass
class WorkerNode:
    """A node started by LocalCluster.start_worker; LocalCluster.stop stops it too."""

    temp_dir: Path

    def pids(self) -> list[int]:
        return processes_naming(str(self.temp_dir))

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace_s: float = 3.0) -> list[int]:
        """Stop this node's processes; SIGKILL is a node lost without warning."""
        return stop_processes(self.pids(), grace_s, first=sig)


def _last_exception(message: str) -> str:
    """The final exception of a Ray status message, without the traceback above it."""
    lines = message.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line[:1].strip() and "Error" in line]
    return "\n".join(lines[starts[-1] :]) if starts else message


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{output}")


def _up(args: argparse.Namespace) -> int:
    cluster = LocalCluster.load(args.state)
    if cluster is not None and cluster.pids():
        print(f"reusing the running cluster in {cluster.temp_dir}; redeploying {args.config}")
        if (cluster.front.value, cluster.transport.value) != (args.front, args.transport):
            print(
                f"note: it runs front {cluster.front.value}, transport {cluster.transport.value}"
                "; `make stop` first to change them (they are fixed when Ray starts)"
            )
    else:
        for port, flag in ((args.grpc_port, "--grpc-port"), (args.metrics_port, "--metrics-port")):
            if port_in_use(port):
                print(f"port {port} is in use; free it or pass {flag}", file=sys.stderr)
                return 1
        cluster = LocalCluster.create(
            grpc_port=args.grpc_port,
            metrics_port=args.metrics_port,
            front=Front(args.front),
            transport=Transport(args.transport),
        )
        cluster.save(args.state)
        print(f"starting Ray in {cluster.temp_dir} (front: {cluster.front.value}) ...")
        cluster.start(num_cpus=args.num_cpus, resources=json.loads(args.resources or "{}"))
    print(f"deploying {args.config} ...")
    cluster.deploy(Path(args.config))
    print("waiting for the model replicas to load and warm up ...")
    try:
        cluster.wait_serving(timeout_s=args.timeout)
    except (RuntimeError, TimeoutError):
        print("Ray is still running: fix and run `make serve` again, or `make stop`.")
        raise
    print(_ready_message(cluster))
    return 0


def _ready_message(cluster: LocalCluster) -> str:
    return f"""
imgclf is SERVING on {cluster.grpc_target} (gRPC, imgclf.v1.ClassifierService)
  classify:   .venv/bin/imgclf classify tests/data/images/tiger.jpg --target {cluster.grpc_target}
  health:     .venv/bin/imgclf health --target {cluster.grpc_target}
  metrics:    curl -s 127.0.0.1:{cluster.metrics_port}/metrics | grep imgclf_   (and ray_serve_)
  Ray logs:   {cluster.temp_dir}/session_latest/logs
  stop:       make stop
"""


def _down(args: argparse.Namespace) -> int:
    cluster = LocalCluster.load(args.state)
    if cluster is None:
        print("no local cluster recorded; nothing to stop")
        return 0
    pids = cluster.stop()
    args.state.unlink(missing_ok=True)
    print(f"stopped {len(pids)} processes of the cluster in {cluster.temp_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster = LocalCluster.load(args.state)
    pids = cluster.pids() if cluster is not None else []
    if cluster is None or not pids:
        print("not running")
        return 1
    print(f"running: {len(pids)} processes, temp dir {cluster.temp_dir}")
    print(f"gRPC {cluster.grpc_target}, metrics 127.0.0.1:{cluster.metrics_port}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imgclf_tools.local_cluster")
    parser.add_argument(
        "--state",
        type=Path,
        default=STATE_FILE,
        help="where the running cluster is recorded (one file per cluster)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start Ray (if needed), deploy, wait until SERVING")
    up.add_argument("--config", default=str(DEFAULT_CONFIG))
    up.add_argument("--grpc-port", type=int, default=9000)
    up.add_argument("--metrics-port", type=int, default=8080)
    up.add_argument("--num-cpus", type=int, default=None)
    up.add_argument("--resources", default=None, help="e.g. '{\"neuron_cores\": 4}'")
    up.add_argument("--timeout", type=float, default=600.0)
    up.add_argument(
        "--front",
        choices=[f.value for f in Front],
        default=DEFAULT_FRONT.value,
        help="haproxy: HAProxy + direct ingress (default); proxy: Ray Serve's Python gRPC proxy",
    )
    up.add_argument(
        "--transport",
        choices=[t.value for t in Transport],
        default=DEFAULT_TRANSPORT.value,
        help="how the ingress calls model replicas",
    )
    up.set_defaults(func=_up)
    commands.add_parser("down", help="stop every process of the cluster").set_defaults(func=_down)
    commands.add_parser("status", help="is it running?").set_defaults(func=_status)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
