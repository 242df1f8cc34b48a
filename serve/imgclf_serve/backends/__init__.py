"""Backends: pick and load the runtime that runs a model on the core a replica holds.

`auto` picks by the core kind: torch-neuronx, then torch-neuron, on a NeuronCore; CUDA on a
GPU; the CPU otherwise. When the accelerator's runtime is missing (a NeuronCore declared to
Ray on a host without the Neuron runtime, as in this repository's tests), `auto` falls back
to the CPU and says so in the log; an explicit backend fails instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from imgclf_serve.backends.artifact import ARTIFACT_DIR_ENV, default_artifact, read_info
from imgclf_serve.backends.base import Backend, BackendName
from imgclf_serve.devices import AssignedDevice, DeviceKind
from imgclf_serve.models import ModelSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """Where a replica gets its model: a weights file, a compiled artifact, or the
    model's embedded weights when both are None."""

    weights: Path | None = None
    artifact: Path | None = None


def resolve_backend(requested: str, device: AssignedDevice) -> BackendName:
    """Turn "auto" into a concrete backend for this device; pass explicit names through."""
    if requested != "auto":
        return BackendName(requested)
    if device.kind is DeviceKind.NEURON_CORE:
        from imgclf_serve.backends.neuron import import_runtime

        for candidate in (BackendName.NEURONX, BackendName.NEURON):
            try:
                import_runtime(candidate)
                return candidate
            except RuntimeError:
                continue
        logger.warning(
            "%s: no Neuron runtime (torch_neuronx, torch_neuron) here; running on the CPU",
            device.describe(),
        )
        return BackendName.CPU
    if device.kind is DeviceKind.GPU:
        import torch

        if torch.cuda.is_available():
            return BackendName.CUDA
        logger.warning("%s: torch sees no CUDA device; running on the CPU", device.describe())
    return BackendName.CPU


def load_backend(
    name: BackendName, spec: ModelSpec, source: ModelSource, cpu_threads: int
) -> Backend:
    """Load `spec` from `source` onto backend `name`."""
    if name is BackendName.NULL:
        from imgclf_serve.backends.null import NullBackend

        return NullBackend(spec.num_classes)
    if name in (BackendName.NEURON, BackendName.NEURONX):
        from imgclf_serve.backends.neuron import NeuronBackend

        artifact = source.artifact or default_artifact(spec.name, name.value)
        if artifact is None:
            raise ValueError(
                f"model {spec.name} on backend {name.value} needs `artifact` (or "
                f"${ARTIFACT_DIR_ENV}/{spec.name}-{name.value}.pt): compile one with "
                f"`python -m imgclf_serve.compile --model {spec.name} --target {name.value}`"
            )
        return NeuronBackend(name, artifact)
    module = _load_module(spec, source, name)
    if name is BackendName.CUDA:
        from imgclf_serve.backends.cuda import CudaBackend

        return CudaBackend(module)
    from imgclf_serve.backends.cpu import CpuBackend

    return CpuBackend(module, cpu_threads)


def _load_module(spec: ModelSpec, source: ModelSource, backend: BackendName):  # type: ignore[no-untyped-def]
    import torch

    if source.artifact is None:
        return spec.build(source.weights)
    info = read_info(source.artifact)
    if info.model != spec.name:
        raise ValueError(f"{source.artifact} holds model {info.model!r}, not {spec.name!r}")
    if info.target not in (BackendName.CPU.value, BackendName.CUDA.value):
        raise ValueError(
            f"{source.artifact} was compiled for {info.target!r}; backend {backend.value} "
            "loads TorchScript compiled for cpu or cuda"
        )
    return torch.jit.load(str(source.artifact), map_location="cpu").eval()


__all__ = ["Backend", "BackendName", "ModelSource", "load_backend", "resolve_backend"]
