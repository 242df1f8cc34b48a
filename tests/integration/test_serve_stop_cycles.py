"""`make serve` / `make stop` in a loop, through the same command they run
(`python -m imgclf_tools.local_cluster up/down`), on the same ports every time: each `down`
returns only once no process of its cluster is left and its gRPC and metrics ports refuse
connections, so the next `up` on those ports starts at once (a script doing
`make stop && make serve` cannot fail on a port still held). Its own state file, so a
developer's `make serve` is left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from imgclf import ClassifierClient
from imgclf_tools.local_cluster import DEFAULT_CONFIG
from imgclf_tools.ports import free_port, port_in_use
from imgclf_tools.processes import processes_naming, stop_processes
from tests.conftest import IMAGES_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CYCLES = 2


def local_cluster(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "imgclf_tools.local_cluster", "--state", str(state), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_serve_and_stop_cycles_on_the_same_ports(tmp_path: Path) -> None:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    (app,) = config["applications"]
    app["args"]["models"][0].update(replicas=1, cpus_per_replica=0.25)
    app["args"]["ingress"] = {"replicas": 1, "cpus_per_replica": 0.25}
    config_path = tmp_path / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    state = tmp_path / "local_cluster.json"
    grpc_port, metrics_port = free_port(), free_port()
    up = ["up", "--config", str(config_path), "--num-cpus", "2",
          "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port)]  # fmt: skip
    temp_dirs: list[str] = []
    try:
        for cycle in range(CYCLES):
            started = local_cluster(state, *up)
            assert started.returncode == 0, f"cycle {cycle}: {started.stdout}{started.stderr}"
            temp_dirs.append(json.loads(state.read_text())["temp_dir"])
            with ClassifierClient(f"127.0.0.1:{grpc_port}", timeout=60) as client:
                top = client.classify((IMAGES_DIR / "tiger.jpg").read_bytes()).top.label
            assert top == "tiger"
            stopped = local_cluster(state, "down")
            assert stopped.returncode == 0, stopped.stderr
            # at once, no waiting: `down` has returned
            assert processes_naming(temp_dirs[-1]) == [], f"cycle {cycle}: processes left"
            assert not port_in_use(grpc_port) and not port_in_use(metrics_port)
            assert not state.exists()
    finally:
        for temp_dir in temp_dirs:
            stop_processes(processes_naming(temp_dir), grace_s=5)
