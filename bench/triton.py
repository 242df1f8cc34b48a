"""Triton (PyTriton) for the side-by-side run. PyTriton pins an older protobuf and numpy than
imgclf, so it lives in its own environment, .venv-triton (`make bench-triton`), which also
sees the main .venv's packages (torch, Pillow, imgclf_serve) after its own. Its server and its
load generator (the same bench/loadgen.py) run with that environment's interpreter."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sysconfig
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.processes import memory_mb
from imgclf_serve.ports import free_port


class TritonBench:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / ".venv-triton" / "bin" / "python"

    def available(self) -> bool:
        return self.python.exists()

    def why_unavailable(self) -> str:
        return f"{self.python} does not exist; run `make bench-triton` first"

    def _module(self, module: str, *args: object) -> list[str]:
        """The command that runs `module` with `args` in the Triton venv's Python."""
        return [str(self.python), "-m", module, *map(str, args)]

    def run(
        self, images: Sequence[bytes], concurrency: Sequence[int], duration: float, threads: int
    ) -> dict[str, Any]:
        http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
        env = {
            "LD_LIBRARY_PATH": str(sysconfig.get_config_var("LIBDIR")),
            "PATH": "/usr/bin:/bin",
            "HOME": str(Path.home()),
            "TRITON_THREADS": str(threads),
        }
        began = time.monotonic()
        server = subprocess.Popen(
            self._module("bench.triton_app", http_port, grpc_port, metrics_port),
            cwd=self.root,
            env=env,
            start_new_session=True,
        )
        try:
            self._wait_ready(http_port)
            cold_start = round(time.monotonic() - began, 2)
            loads = []
            for c in concurrency:
                done = subprocess.run(
                    self._module("bench.triton_load", grpc_port, c, duration),
                    cwd=self.root,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=duration + 120,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"triton load failed: {done.stderr[-2000:]}")
                loads.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"  triton infer c={c}: {loads[-1]['images_per_s']} img/s", flush=True)
            memory = {"system": "triton", "replicas": 2, **memory_mb(_tree(server.pid))}
        finally:
            _stop(server)
        return {"loads": loads, "memory": memory, "cold_start_s": cold_start}

    @staticmethod
    def _wait_ready(port: int) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                # the model's own readiness: the server answers ready before its model is
                url = f"http://127.0.0.1:{port}/v2/models/efficientnet_lite0/ready"
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("Triton did not become ready in 180 s")


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(c) for c in children]
        frontier += [int(c) for c in children]
    return found


def _stop(server: subprocess.Popen[bytes]) -> None:
    pids = _tree(server.pid)
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=15)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
