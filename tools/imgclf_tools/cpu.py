"""CPU time per process, read from /proc, grouped by the role each process plays on the
serving path; and the machine's CPU steal. Linux only.

    before = cpu_by_role(pids); ...load...; used = cpu_by_role(pids) - before
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# Ray starts its worker processes (every Serve replica, and the HAProxy they spawn) at this
# niceness (RAY_worker_niceness). A benchmark runs its load generator and its non-Ray systems
# at the same niceness, so that none of them is favoured by the scheduler on shared CPUs.
RAY_WORKER_NICENESS = 15


def match_ray_niceness(pids: list[int]) -> None:
    """Give `pids` (0: this process) Ray workers' niceness. Call it once the Ray clusters are
    up: Ray adds its worker niceness to the niceness it is started with. Processes started
    afterwards inherit it."""
    for pid in pids:
        os.setpriority(os.PRIO_PROCESS, pid, RAY_WORKER_NICENESS)


# (role, what the start of the process's command line says), first match wins.
ROLES = (
    ("front: haproxy", "haproxy"),
    ("front: haproxy manager", "ray::HAProxyManager"),
    ("front: ray proxy", "ray::ProxyActor"),
    ("ingress", "ray::ServeReplica:imgclf:ClassifierIngress"),
    ("model replica", "ray::ServeReplica:imgclf:"),
    ("serve controller", "ray::ServeController"),
    ("ray metrics agent", "ray::DashboardAgent"),
    ("raylet", "raylet"),
    ("gcs", "gcs_server"),
)
# Ray's Python daemons, named by the script they run: (role, script path ending).
SCRIPTS = (
    ("ray log monitor", "_private/log_monitor.py"),
    ("ray dashboard head", "dashboard/dashboard.py"),
    ("ray runtime-env agent", "runtime_env/agent/main.py"),
)


def role_of(pid: int) -> str:
    """The serving-path role of a process, from its command line; 'other' if none fits."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "gone"
    argv0 = raw.split(b"\0", 1)[0].decode(errors="replace")
    command = raw.replace(b"\0", b" ").decode(errors="replace")
    for role, marker in ROLES:
        if command.startswith(marker) or Path(argv0).name == marker:
            return role
    for role, script in SCRIPTS:
        if f"{script} " in command:
            return role
    return "other"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / TICKS_PER_S


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far per role, the processes counted per role, and steal time."""

    by_role: dict[str, float]
    processes: dict[str, int]
    steal_s: float

    def __sub__(self, earlier: CpuSample) -> CpuSample:
        return CpuSample(
            by_role={
                role: round(self.by_role[role] - earlier.by_role.get(role, 0.0), 3)
                for role in self.by_role
            },
            processes=self.processes,
            steal_s=round(self.steal_s - earlier.steal_s, 3),
        )


def sample(pids: list[int], named: dict[int, str] | None = None) -> CpuSample:
    """CPU used so far by `pids`, by role; `named` gives some processes their role."""
    by_role: dict[str, float] = {}
    processes: Counter[str] = Counter()
    for pid in pids:
        role = (named or {}).get(pid) or role_of(pid)
        by_role[role] = by_role.get(role, 0.0) + cpu_seconds(pid)
        processes[role] += 1
    return CpuSample(dict(by_role), dict(processes), machine_steal_s())


def sample_with_load_generator(pids: list[int]) -> CpuSample:
    """`sample` of `pids` and of this process, counted as the load generator."""
    return sample([*pids, os.getpid()], {os.getpid(): "load generator"})


def machine_steal_s() -> float:
    """CPU seconds stolen by the hypervisor from this VM so far, all CPUs together."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return int(fields[8]) / TICKS_PER_S if len(fields) > 8 else 0.0
