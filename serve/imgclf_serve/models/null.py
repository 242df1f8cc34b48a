"""`null`: a model with ImageNet's classes that runs on the null backend (backends/null.py):
fixed probabilities, no decoding, no computation. For measuring the serving path alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from imgclf_serve.models.spec import ModelSpec
from imgclf_serve.preprocess import PreprocessSpec

if TYPE_CHECKING:
    import torch


def build(weights: Path | None) -> torch.nn.Module:
    raise ValueError("model null has no module: it runs on backend null only")


SPEC = ModelSpec(
    name="null",
    preprocess=PreprocessSpec(resize=256, crop=224),
    build=build,
    default_backend="null",
)
