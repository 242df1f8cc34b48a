"""Start and stop what a benchmark needs, and measure its memory: an imgclf local cluster, the
prototype-style server. Everything binds 127.0.0.1 and is stopped by PID."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from imgclf_serve.front import DEFAULT_FRONT, DEFAULT_TRANSPORT, Front, Transport
from imgclf_tools.local_cluster import DEFAULT_CONFIG, LocalCluster
from imgclf_tools.ports import free_port
from imgclf_tools.processes import stop_processes

MODEL = "efficientnet-lite0"


def serve_config(
    replicas: int,
    cpus_per_replica: float,
    user_config: dict[str, Any] | None = None,
    torch_threads: int | None = None,
) -> dict[str, Any]:
    """serve/serve_config.yaml with the model's replicas, CPU share, threads and batching."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    (app,) = config["applications"]
    (model,) = app["args"]["models"]
    model.update(replicas=replicas, cpus_per_replica=cpus_per_replica, device="cpu")
    if torch_threads:
        model["torch_threads"] = torch_threads
    if user_config:
        (deployment,) = (d for d in app["deployments"] if d["name"] == MODEL)
        deployment["user_config"] = {**deployment.get("user_config", {}), **user_config}
    return config


def null_model_config(
    replicas: int,
    cpus_per_replica: float,
    ingress: dict[str, Any] | None = None,
    access_log: bool | None = None,
) -> dict[str, Any]:
    """serve/serve_config.yaml serving only the null model (fixed probabilities, no decoding):
    the serving path alone. `ingress` sets AppArgs.ingress fields; `access_log` Ray Serve's
    access log (None: as the config file says)."""
    config = serve_config(replicas, cpus_per_replica)
    (app,) = config["applications"]
    if access_log is not None:
        app.setdefault("logging_config", {})["enable_access_log"] = access_log
    (model,) = app["args"]["models"]
    model["name"] = "null"
    if ingress:
        app["args"]["ingress"] = ingress
    (deployment,) = (d for d in app["deployments"] if d["name"] == MODEL)
    deployment["name"] = "null"
    return config


@dataclass
class ImgclfServer:
    cluster: LocalCluster
    workdir: Path
    cold_start_s: float = 0.0

    @classmethod
    def start(
        cls,
        workdir: Path,
        config: dict[str, Any],
        num_cpus: int,
        extra_env: dict[str, str] | None = None,
        front: Front = DEFAULT_FRONT,
        transport: Transport = DEFAULT_TRANSPORT,
        model: str = MODEL,
        resources: dict[str, float] | None = None,
    ) -> ImgclfServer:
        """Start a cluster and deploy `config`; cold start = start to first Classify answered."""
        began = time.monotonic()
        server = cls(LocalCluster.create(front=front, transport=transport), workdir)
        server.cluster.start(
            num_cpus=num_cpus,
            resources=resources,
            system_config={"metrics_report_interval_ms": 1000},
            extra_env=extra_env,
        )
        server.deploy(config)
        server.cluster.wait_serving(timeout_s=600, progress=lambda _: None)
        image = (Path(__file__).parents[1] / "tests/data/images/tiger.jpg").read_bytes()
        with grpc.insecure_channel(server.cluster.grpc_target) as channel:
            stub = pb_grpc.ClassifierServiceStub(channel)
            stub.Classify(pb.ClassifyRequest(image=image, model=model))
        server.cold_start_s = round(time.monotonic() - began, 2)
        return server

    def deploy(self, config: dict[str, Any]) -> None:
        path = self.workdir / "serve_config.yaml"
        path.write_text(yaml.safe_dump(copy.deepcopy(config), sort_keys=False))
        self.cluster.deploy(path)

    def pids(self) -> list[int]:
        return self.cluster.pids()

    def batch_sizes(self) -> dict[float, float]:
        """Cumulative `ray_imgclf_batch_size` bucket counts (le -> count), all replicas."""
        url = f"http://127.0.0.1:{self.cluster.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
        buckets: dict[float, float] = {}
        for le, value in re.findall(
            r'^ray_imgclf_batch_size_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)', text, re.M
        ):
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
        return buckets

    def stop(self) -> None:
        self.cluster.stop()


@dataclass
class PrototypeServer:
    process: subprocess.Popen[bytes]
    port: int
    cold_start_s: float

    @classmethod
    def start(cls, threads: int) -> PrototypeServer:
        port = free_port()
        began = time.monotonic()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.prototype_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--log-level",
                "warning",
            ],
            env={**os.environ, "PROTOTYPE_THREADS": str(threads)},
            cwd=Path(__file__).parents[1],
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=2):
                    return cls(process, port, round(time.monotonic() - began, 2))
            except OSError:
                time.sleep(0.3)
        process.kill()
        raise RuntimeError("the prototype server did not start in 120 s")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def pids(self) -> list[int]:
        return [self.process.pid]

    def stop(self) -> None:
        stop_processes([self.process.pid], grace_s=10)
        self.process.wait(timeout=5)
