"""The interface every backend offers the replica: a batch of images in, probabilities out."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod

import numpy as np


class BackendName(str, enum.Enum):
    """Runtimes a model can run on."""

    CPU = "cpu"
    CUDA = "cuda"
    NEURON = "neuron"  # torch-neuron, Inferentia 1
    NEURONX = "neuronx"  # torch-neuronx, Inferentia 2 and Trainium
    NULL = "null"  # fixed probabilities, no computation: measures the serving path alone


class Backend(ABC):
    """A loaded model on one core.

    The replica calls `init_thread` once on the thread that will run every `predict`
    (intra-op thread pools are per calling thread), then `predict` one batch at a time.
    """

    name: BackendName
    # Whether `predict` needs decoded pixels; if not, the replica only checks each image's
    # header and passes placeholders.
    decodes: bool = True

    def init_thread(self) -> None:  # noqa: B027 - optional hook
        """Prepare the calling thread to run forward passes."""

    @abstractmethod
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 normalised images -> (N, classes) float32 probabilities."""
