"""Which accelerator cores this process holds, as Ray assigned them."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass


class DeviceKind(str, enum.Enum):
    """The kind of core a model replica is pinned to; each maps to one Ray resource."""

    CPU = "cpu"
    GPU = "gpu"
    NEURON_CORE = "neuron_core"


# Ray sets these per actor from the accelerator resource the actor holds.
VISIBLE_CORES_ENV = {
    DeviceKind.NEURON_CORE: "NEURON_RT_VISIBLE_CORES",
    DeviceKind.GPU: "CUDA_VISIBLE_DEVICES",
}


@dataclass(frozen=True)
class AssignedDevice:
    """The cores one replica holds: kind plus ids (empty for CPU)."""

    kind: DeviceKind
    core_ids: tuple[int, ...] = ()

    def describe(self) -> str:
        if not self.core_ids:
            return self.kind.value
        return f"{self.kind.value} {self.core_label()}"

    def core_label(self) -> str:
        """The core ids as a metric label ("2", "0,1"); "cpu" for CPU slots, which have none."""
        return ",".join(map(str, self.core_ids)) or DeviceKind.CPU.value


def parse_core_ids(value: str) -> tuple[int, ...]:
    """Parse "2", "0,1" or "0-3" (the Neuron runtime's range form) into core ids."""
    ids: list[int] = []
    for part in value.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-", 1)
            ids.extend(range(int(first), int(last) + 1))
        else:
            ids.append(int(part))
    return tuple(ids)


def assigned_device(kind: DeviceKind, environ: dict[str, str] | None = None) -> AssignedDevice:
    """Read the cores Ray gave this process for a replica pinned to `kind`."""
    env = os.environ if environ is None else environ
    variable = VISIBLE_CORES_ENV.get(kind)
    if variable is None:
        return AssignedDevice(kind)
    raw = env.get(variable, "")
    try:
        return AssignedDevice(kind, parse_core_ids(raw))
    except ValueError as exc:
        raise RuntimeError(f"cannot parse {variable}={raw!r} as core ids") from exc
