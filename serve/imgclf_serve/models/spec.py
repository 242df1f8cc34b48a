"""What the server knows about a model before loading it: input, classes, how to build it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from imgclf_serve.models.labels import imagenet_labels
from imgclf_serve.preprocess import PreprocessSpec

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelSpec:
    """A preset, or a model described in the Serve config (models/custom.py).

    `build(weights)` returns the eval-mode torch module with weights loaded from `weights`,
    or from the model's embedded weights (its own file) when `weights` is None.
    `labels()` names the model's outputs, in order: `num_classes` of them.
    """

    name: str
    preprocess: PreprocessSpec
    build: Callable[[Path | None], torch.nn.Module] = field(repr=False)
    num_classes: int = 1000
    # What `backend: auto` means for this model; "auto" picks by the core it runs on.
    default_backend: str = "auto"
    labels: Callable[[], tuple[str, ...]] = field(default=imagenet_labels, repr=False)

    @property
    def input_size(self) -> int:
        return self.preprocess.crop
