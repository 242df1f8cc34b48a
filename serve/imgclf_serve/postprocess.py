"""Probabilities -> the top-k predictions a client sees."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imgclf_serve.results import Prediction

DEFAULT_TOP_K = 5


def top_k(probabilities: np.ndarray, k: int, labels: Sequence[str]) -> tuple[Prediction, ...]:
    """The k most probable classes, most probable first; equal probabilities keep index order."""
    if probabilities.ndim != 1:
        raise ValueError(f"expected one image's probabilities, got shape {probabilities.shape}")
    k = min(k, probabilities.shape[0])
    if k <= 0:
        return ()
    order = np.argsort(-probabilities, kind="stable")[:k].tolist()
    return tuple(Prediction(labels[i], i, float(probabilities[i])) for i in order)
