"""Processes on this machine, found and stopped by PID (never by name), and their memory.
Linux only: everything is read from /proc."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterable
from pathlib import Path


def processes_naming(*markers: str) -> list[int]:
    """PIDs of the processes whose command line contains one of `markers`, and of all their
    descendants (Ray's workers rename themselves, so only their parents name the markers)."""
    parents: dict[int, int] = {}
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw_cmdline = (entry / "cmdline").read_bytes()
            cmdline = raw_cmdline.replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if any(marker in cmdline + " " for marker in markers):
            roots.append(pid)
    found = set(roots)
    changed = True
    while changed:
        children = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= children
        changed = bool(children)
    found.discard(os.getpid())
    return sorted(found)


def stop_processes(
    pids: list[int], grace_s: float = 3.0, first: signal.Signals = signal.SIGTERM
) -> list[int]:
    """Send `first` (then SIGKILL to what is left after `grace_s`) to `pids`; returns them."""
    for sig in dict.fromkeys((first, signal.SIGKILL)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.2)
        if not any(alive(pid) for pid in pids):
            break
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def memory_mb(pids: Iterable[int]) -> dict[str, float]:
    """Summed RSS and PSS (MB) of the processes, from /proc/<pid>/smaps_rollup."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        rss += int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
        pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    return {"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1)}
