"""A real Prometheus (Debian's 2.42 package, `make prometheus`) for the metrics tests.

It runs on 127.0.0.1 with its own data folder, scrapes every second, and is stopped by its
PID. `StaticMetrics` serves a saved scrape (neuron-monitor's) as a second target.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgclf_tools.ports import free_port
from imgclf_tools.processes import stop_processes


class PrometheusError(RuntimeError):
    """Prometheus could not be found, started, or answer a query."""


@dataclass
class Prometheus:
    workdir: Path
    targets: dict[str, str]  # job name -> host:port
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusError("prometheus is not installed; run `make prometheus`")
        self.port = free_port()
        jobs = "".join(
            f"  - job_name: {job}\n    static_configs: [{{targets: ['{target}']}}]\n"
            for job, target in self.targets.items()
        )
        config = self.workdir / "prometheus.yml"
        config.write_text(
            f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n{jobs}"
        )
        log = (self.workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        stop_processes([self.process.pid], grace_s=10)
        self.process.wait(timeout=5)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector for `expr`, as Prometheus' HTTP API returns it."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                body = json.load(reply)
        except urllib.error.HTTPError as exc:
            raise PrometheusError(f"{expr!r}: {exc.read().decode()}") from exc
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        """{label values: sample value} for each series of `expr`."""
        return {
            tuple(series["metric"].get(label, "") for label in labels): float(series["value"][1])
            for series in self.query(expr)
        }

    def wait_for(self, expr: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if result := self.query(expr):
                return result
            time.sleep(0.5)
        raise PrometheusError(f"no data for {expr!r} after {timeout_s} s")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise PrometheusError("prometheus exited; see prometheus.log")
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{self.port}/-/ready"
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        return
            time.sleep(0.2)
        raise PrometheusError("prometheus did not become ready in 30 s")


class StaticMetrics:
    """Serves one saved Prometheus text file at http://127.0.0.1:<port>/metrics."""

    def __init__(self, path: Path) -> None:
        body = path.read_bytes()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
