"""postprocess.top_k."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf_serve.postprocess import top_k

LABELS = [f"class{i}" for i in range(6)]


def test_most_probable_first_with_labels_and_indices() -> None:
    probabilities = np.array([0.05, 0.4, 0.1, 0.3, 0.05, 0.1], dtype=np.float32)
    predictions = top_k(probabilities, 3, LABELS)
    assert [p.class_index for p in predictions] == [1, 3, 2]
    assert [p.label for p in predictions] == ["class1", "class3", "class2"]
    assert predictions[0].probability == pytest.approx(0.4)
    assert all(isinstance(p.probability, float) for p in predictions)


def test_ties_keep_index_order() -> None:
    probabilities = np.array([0.1, 0.3, 0.1, 0.3, 0.1, 0.1])
    assert [p.class_index for p in top_k(probabilities, 4, LABELS)] == [1, 3, 0, 2]


def test_k_larger_than_classes_returns_all() -> None:
    assert len(top_k(np.full(6, 1 / 6), 10, LABELS)) == 6


def test_rejects_a_batch() -> None:
    with pytest.raises(ValueError, match="one image"):
        top_k(np.zeros((2, 6)), 1, LABELS)
