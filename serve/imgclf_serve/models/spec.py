"""What the server knows about a model before loading it: input, classes, how to build it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from imgclf_serve.preprocess import PreprocessSpec

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    `build(weights)` returns the eval-mode torch module with weights loaded from `weights`,
    or from the model's embedded weights when `weights` is None and it ships some.
    """

    name: str
    preprocess: PreprocessSpec
    build: Callable[[Path | None], torch.nn.Module] = field(repr=False)
    num_classes: int = 1000
    # What `backend: auto` means for this model; "auto" picks by the core it runs on.
    default_backend: str = "auto"

    @property
    def input_size(self) -> int:
        return self.preprocess.crop
