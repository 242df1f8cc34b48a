"""`imgclf-serve`, the containers' command (docker/Dockerfile.*), installed from the built wheels
into a clean venv with every dependency (the `server_install` fixture), run as a container runs it:
in the foreground, Ray as its child, the Serve config deployed, SERVING reported; the real model
classifies through it; SIGTERM (`docker stop`) stops every process it started, frees its port
and exits 0. Its own cluster beside the session's, with its own temp dir, ports and front files
(passed as environment, which the command leaves as given), bound to 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from imgclf import ClassifierClient
from imgclf_serve.front import DEFAULT_FRONT, DEFAULT_TRANSPORT
from imgclf_tools.local_cluster import DEFAULT_CONFIG, isolated_front_env
from imgclf_tools.ports import free_port, port_in_use
from imgclf_tools.processes import processes_naming, stop_processes
from tests.conftest import IMAGES_DIR
from tests.distributions import Venv

pytestmark = [pytest.mark.integration, pytest.mark.slow]
STARTUP_S = 300


def small_config(path: Path) -> Path:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    (app,) = config["applications"]
    (model,) = app["args"]["models"]
    model.update(cpus_per_replica=0.25, replicas=1)
    app["args"]["ingress"] = {"cpus_per_replica": 0.25, "replicas": 1}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_imgclf_serve_serves_in_the_foreground_and_stops_everything_on_sigterm(
    server_install: Venv,
) -> None:
    command = server_install.path / "bin" / "imgclf-serve"
    temp_dir = Path(tempfile.mkdtemp(prefix="imgclf-sa-", dir="/tmp"))
    grpc_port = free_port()
    ray_ports = " ".join(
        f"--{name}={free_port()}"
        for name in (
            "dashboard-port",
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "runtime-env-agent-port",
            "ray-client-server-port",
        )
    )
    args = [
        str(command), "--config", str(small_config(temp_dir / "config.yaml")),
        "--host", "127.0.0.1", "--grpc-port", str(grpc_port), "--http-port", str(free_port()),
        "--metrics-port", str(free_port()), "--gcs-port", str(free_port()),
        "--temp-dir", str(temp_dir), "--num-cpus", "2", "--ray-start-args", ray_ports,
    ]  # fmt: skip
    env = {**os.environ, **isolated_front_env(DEFAULT_FRONT, DEFAULT_TRANSPORT, temp_dir)}
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()  # type: ignore[union-attr]
            lines.append(line)
            if "imgclf-serve: SERVING" in line:
                break
        assert any("SERVING" in line for line in lines), "".join(lines[-30:])
        with ClassifierClient(f"127.0.0.1:{grpc_port}", timeout=60) as client:
            result = client.classify((IMAGES_DIR / "tiger.jpg").read_bytes())
            health = client.health().name
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=120)
        stop_s = time.monotonic() - started
        time.sleep(2)  # what SIGTERM reached has had time to exit
        left = processes_naming(str(temp_dir))
    finally:
        if process.poll() is None:
            process.kill()
        stop_processes(processes_naming(str(temp_dir)), grace_s=5)
    print(f"\n[imgclf-serve] SERVING, then stopped by SIGTERM in {stop_s:.1f} s")
    assert result.top.label == "tiger"
    assert health == "SERVING"
    assert exit_code == 0
    assert left == []
    assert not port_in_use(grpc_port)
