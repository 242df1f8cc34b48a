"""Triton (PyTriton) for the side-by-side run. PyTriton pins an older protobuf and numpy than
imgclf, so it lives in its own environment, .venv-triton (`make bench-triton`), which also
sees the main .venv's packages (torch, Pillow, imgclf_serve) after its own. Its server and its
load generator (the same imgclf_tools/loadgen.py) run with that environment's interpreter."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sysconfig
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgclf_tools.ports import free_port
from imgclf_tools.processes import memory_mb


@dataclass(frozen=True)
class OipTarget:
    """A server the Open Inference Protocol load generator drives: its gRPC port, and the
    model and BYTES input names it expects."""

    system: str
    grpc_port: int
    model: str
    input: str


START_ATTEMPTS = 3


class TritonBench:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / ".venv-triton" / "bin" / "python"

    def available(self) -> bool:
        return self.python.exists()

    def why_unavailable(self) -> str:
        return f"{self.python} does not exist; run `make bench-triton` first"

    def oip_load(
        self,
        target: OipTarget,
        concurrency: int,
        duration: float,
        per_call: int = 1,
        rate: float | None = None,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Drive `target` with bench.oip_load (tritonclient, in this venv); its LoadResult."""
        args: list[object] = [target.grpc_port, concurrency, duration, per_call]
        if rate is not None:
            args.append(rate)
        args += ["--system", target.system, "--model", target.model, "--input", target.input]
        done = subprocess.run(
            self._module("bench.oip_load", *args),
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=duration + 120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{target.system} load failed: {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def _module(self, module: str, *args: object) -> list[str]:
        """The command that runs `module` with `args` in the Triton venv's Python."""
        return [str(self.python), "-m", module, *map(str, args)]

    def run(
        self, images: Sequence[bytes], concurrency: Sequence[int], duration: float, threads: int
    ) -> dict[str, Any]:
        """Start Triton, run a closed-loop point per concurrency, stop it (bench.run)."""
        with self.serving(threads) as server:
            loads = []
            for c in concurrency:
                loads.append(server.load(c, duration))
                print(f"  triton infer c={c}: {loads[-1]['images_per_s']} img/s", flush=True)
            memory = {"system": "triton", "replicas": 2, **memory_mb(server.pids())}
        return {"loads": loads, "memory": memory, "cold_start_s": server.cold_start_s}

    @contextlib.contextmanager
    def serving(self, threads: int) -> Iterator[TritonServer]:
        env = {
            "LD_LIBRARY_PATH": str(sysconfig.get_config_var("LIBDIR")),
            "PATH": "/usr/bin:/bin",
            "HOME": str(Path.home()),
            "TRITON_THREADS": str(threads),
        }
        for attempt in range(1, START_ATTEMPTS + 1):
            began = time.monotonic()
            http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
            process = subprocess.Popen(
                self._module("bench.triton_app", http_port, grpc_port, metrics_port),
                cwd=self.root,
                env=env,
                start_new_session=True,
            )
            try:
                if self._wait_ready(process, http_port):
                    break
            except BaseException:
                _stop(process)
                raise
            _stop(process)
            print(f"  Triton exited before its model loaded (attempt {attempt})", flush=True)
        else:
            raise RuntimeError(f"Triton did not start in {START_ATTEMPTS} attempts")
        try:
            yield TritonServer(self, process, grpc_port, env, round(time.monotonic() - began, 2))
        finally:
            _stop(process)

    @staticmethod
    def _wait_ready(process: subprocess.Popen[bytes], port: int) -> bool:
        """True once the model is ready; False if Triton exited first. PyTriton 0.7.0's model
        instances race for a handshake socket (the second may connect between the first's
        bind and listen: ConnectionRefusedError), which fails the load now and then."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                # the model's own readiness: the server answers ready before its model is
                url = f"http://127.0.0.1:{port}/v2/models/efficientnet_lite0/ready"
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return True
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


@dataclass
class TritonServer:
    """A running PyTriton server; `load` drives it with bench.triton_load in .venv-triton."""

    bench: TritonBench
    process: subprocess.Popen[bytes]
    grpc_port: int
    env: dict[str, str]
    cold_start_s: float

    def load(
        self, concurrency: int, duration: float, per_call: int = 1, rate: float | None = None
    ) -> dict[str, Any]:
        return self.bench.oip_load(
            OipTarget("triton", self.grpc_port, "efficientnet_lite0", "image"),
            concurrency,
            duration,
            per_call,
            rate,
            self.env,
        )

    def pids(self) -> list[int]:
        return _tree(self.process.pid)
