"""local_cluster: finding and stopping exactly one cluster's processes, by PID.

Real processes stand in for Ray's here: one names the temp dir (as gcs_server and raylet
do), one names only the GCS address (as Ray's client server does), and a child of the
first has neither (as Ray's workers, renamed to ray::..., do).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from imgclf_tools.local_cluster import LocalCluster, _last_exception
from imgclf_tools.ports import free_port, port_in_use

SLEEPER = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"  # noqa: E501


def test_stop_kills_the_cluster_processes_and_only_them(tmp_path: Path) -> None:
    cluster = LocalCluster(
        tmp_path / "ray", gcs_port=54321, grpc_port=1, http_port=2, metrics_port=3
    )
    other = LocalCluster(
        tmp_path / "other", gcs_port=54322, grpc_port=1, http_port=2, metrics_port=3
    )
    sleep = "import time; time.sleep(60)"
    ours = [
        subprocess.Popen([sys.executable, "-c", SLEEPER, f"--temp-dir={cluster.temp_dir}"]),
        subprocess.Popen([sys.executable, "-c", sleep, "--address=10.0.0.1:54321"]),
    ]
    theirs = subprocess.Popen([sys.executable, "-c", SLEEPER, f"--temp-dir={other.temp_dir}"])
    try:
        deadline = time.monotonic() + 10
        while len(cluster.pids()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        found = cluster.pids()
        assert len(found) == 3 and {p.pid for p in ours} <= set(found)
        assert theirs.pid not in found
        assert sorted(cluster.stop(grace_s=2)) == found
        for process in ours:
            process.wait(timeout=5)
        assert cluster.pids() == []
        assert theirs.poll() is None
    finally:
        other.stop(grace_s=2)
        for process in [*ours, theirs]:
            process.kill()
            process.wait()


# Listens on a port; on SIGTERM it hands the socket to a new process (naming the temp dir, as
# Ray's processes do) and exits: a process that appears while the cluster stops, holding a port.
LISTENER = """
import signal, socket, subprocess, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
HOLD = "import socket, sys, time; keep = socket.socket(fileno=int(sys.argv[1])); time.sleep(60)"
def hand_over(*_):
    fd = sock.fileno()
    subprocess.Popen([sys.executable, "-c", HOLD, str(fd), sys.argv[2]], pass_fds=[fd])
    sys.exit(0)
signal.signal(signal.SIGTERM, hand_over)
time.sleep(60)
"""


def test_stop_returns_once_late_processes_are_gone_and_the_ports_closed(tmp_path: Path) -> None:
    port = free_port()
    cluster = LocalCluster(
        tmp_path / "ray", gcs_port=54323, grpc_port=port, http_port=2, metrics_port=3
    )
    first = subprocess.Popen(
        [sys.executable, "-c", LISTENER, str(port), f"--temp-dir={cluster.temp_dir}"]
    )
    try:
        deadline = time.monotonic() + 10
        while not port_in_use(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert port_in_use(port)
        stopped = cluster.stop(grace_s=2)
        assert first.pid in stopped and len(stopped) == 2  # the listener, then its successor
        assert not port_in_use(port) and cluster.pids() == []
    finally:
        first.kill()
        first.wait()


def test_state_round_trips(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, gcs_port=1, grpc_port=2, http_port=3, metrics_port=4)
    cluster.save(tmp_path / "state.json")
    assert LocalCluster.load(tmp_path / "state.json") == cluster
    assert LocalCluster.load(tmp_path / "missing.json") is None


def test_last_exception_drops_the_traceback() -> None:
    message = (
        'Traceback (most recent call last):\n  File "x.py", line 1\n    raise ValueError\n'
        "ValueError: resnet50 ships no weights\n  more detail"
    )
    assert _last_exception(message) == "ValueError: resnet50 ships no weights\n  more detail"
    assert _last_exception("Failed to update the deployments") == "Failed to update the deployments"
