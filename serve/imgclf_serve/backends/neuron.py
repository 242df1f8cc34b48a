"""AWS Neuron backends: torch-neuron (Inferentia 1) and torch-neuronx (Inferentia 2, Trainium).

Both load a TorchScript artifact compiled by `python -m imgclf_serve.compile`. The Neuron
packages are imported here, lazily, and only inside a replica: the runtime claims the cores
in NEURON_RT_VISIBLE_CORES when a model first loads, and an actor without a core assigned
would otherwise claim every core on the host.

Not run on Inferentia hardware in this repository's tests (see README, "Verified where").
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import torch

from imgclf_serve.backends.artifact import read_info
from imgclf_serve.backends.base import Backend, BackendName
from imgclf_serve.backends.fixed_batch import run_in_fixed_batches

RUNTIME_PACKAGE = {BackendName.NEURON: "torch_neuron", BackendName.NEURONX: "torch_neuronx"}


def import_runtime(name: BackendName) -> None:
    """Import torch_neuron / torch_neuronx, which registers the Neuron ops with TorchScript."""
    package = RUNTIME_PACKAGE[name]
    try:
        importlib.import_module(package)
    except Exception as exc:  # the PyPI torch-neuron placeholder raises on import
        raise RuntimeError(f"backend {name.value} needs the {package} package: {exc}") from exc


class NeuronBackend(Backend):
    """A compiled artifact on the NeuronCore(s) this process holds."""

    def __init__(self, name: BackendName, artifact: Path) -> None:
        self.name = name
        import_runtime(name)
        info = read_info(artifact)
        if info.target != name.value:
            raise ValueError(
                f"{artifact} was compiled for {info.target!r}, not for backend {name.value!r}"
            )
        self._batch_size = info.batch_size
        self._module = torch.jit.load(str(artifact))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = run_in_fixed_batches(self._module, torch.from_numpy(batch), self._batch_size)
            return torch.softmax(logits.float(), dim=-1).numpy()
