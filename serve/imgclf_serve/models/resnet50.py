"""ResNet50, the prototype's model: torchvision's architecture, weights from a configured file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from imgclf_serve.models.spec import ModelSpec
from imgclf_serve.preprocess import PreprocessSpec

if TYPE_CHECKING:
    import torch


def build(weights: Path | None) -> torch.nn.Module:
    import torch
    from torchvision.models import resnet50

    if weights is None:
        raise ValueError(
            "resnet50 ships no weights: set `weights` to a torchvision ResNet50 state dict "
            "(.pth), or `artifact` to a model compiled by `python -m imgclf_serve.compile`"
        )
    model = resnet50(weights=None)
    state = torch.load(str(weights), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    evaluating: torch.nn.Module = model.eval()
    return evaluating


SPEC = ModelSpec(
    name="resnet50",
    preprocess=PreprocessSpec(resize=256, crop=224),
    build=build,
)
