"""The null backend: fixed probabilities without any computation, and no pixel decoding.

It measures the serving path alone (front, ingress, replica, batching) at rates no real model
reaches; the image is still checked (size, format header, pixel count) so bad input fails as
it would with a model. Never the default: select it with `backend: null` on a model, or deploy
the registered model named `null`.
"""

from __future__ import annotations

import numpy as np

from imgclf_serve.backends.base import Backend, BackendName


def fixed_probabilities(num_classes: int) -> np.ndarray:
    """A distribution over the classes that falls with the class index (class 0 is top)."""
    weights = np.arange(num_classes, 0, -1, dtype=np.float64)
    probabilities: np.ndarray = (weights / weights.sum()).astype(np.float32)
    return probabilities


class NullBackend(Backend):
    name = BackendName.NULL
    decodes = False

    def __init__(self, num_classes: int) -> None:
        self._probabilities = fixed_probabilities(num_classes)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._probabilities, (len(batch), len(self._probabilities)))
