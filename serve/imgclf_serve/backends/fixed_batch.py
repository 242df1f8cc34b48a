"""Run a model compiled for a fixed batch size on any number of images: chunk and pad."""

from __future__ import annotations

from collections.abc import Callable

import torch


def run_in_fixed_batches(
    forward: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, size: int
) -> torch.Tensor:
    """Split `batch` into chunks of exactly `size` rows (zero-padding the last) and
    concatenate the outputs, padding rows dropped."""
    outputs = []
    for start in range(0, batch.shape[0], size):
        chunk = batch[start : start + size]
        rows = chunk.shape[0]
        if rows < size:
            padding = chunk.new_zeros((size - rows, *chunk.shape[1:]))
            chunk = torch.cat([chunk, padding])
        outputs.append(forward(chunk)[:rows])
    return torch.cat(outputs)
