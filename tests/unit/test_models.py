"""The model registry with real weights: the embedded model's predictions on the seed images,
and ResNet50 loaded from a weights file the test writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf_serve.errors import ModelNotFound
from imgclf_serve.models import REGISTRY, get_spec, imagenet_labels
from imgclf_serve.postprocess import top_k
from imgclf_serve.preprocess import ImageLimits, load_image
from tests.conftest import SEED_TOP1


def classify(module: torch.nn.Module, data: bytes, k: int = 5) -> list[str]:
    spec = get_spec("efficientnet-lite0")
    pixels = load_image(data, spec.preprocess, ImageLimits())
    with torch.inference_mode():
        probabilities = torch.softmax(module(torch.from_numpy(pixels[None])), -1)[0].numpy()
    return [p.label for p in top_k(probabilities, k, imagenet_labels())]


def test_labels_are_torchvision_imagenet_categories() -> None:
    from torchvision.models import ResNet50_Weights

    labels = imagenet_labels()
    assert labels == tuple(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
    assert len(labels) == 1000
    assert (labels[281], labels[292], labels[949]) == ("tabby", "tiger", "strawberry")


def test_registry() -> None:
    assert set(REGISTRY) == {"efficientnet-lite0", "resnet50", "null"}
    with pytest.raises(ModelNotFound, match="unknown model 'vgg16'"):
        get_spec("vgg16")


def test_embedded_efficientnet_lite0_classifies_the_seed_images(
    seed_images: dict[str, bytes],
) -> None:
    module = get_spec("efficientnet-lite0").build(None)
    for name, data in seed_images.items():
        assert classify(module, data)[0] == SEED_TOP1[name], name
    assert classify(module, seed_images["kitten_small.jpg"])[:3] == [
        "tabby",
        "Egyptian cat",
        "tiger cat",
    ]


def test_resnet50_loads_a_weights_file(resnet50_weights: Path) -> None:
    module = get_spec("resnet50").build(resnet50_weights)
    expected = torch.load(resnet50_weights, weights_only=True)
    assert torch.equal(module.state_dict()["fc.weight"], expected["fc.weight"])
    assert not module.training
    with torch.inference_mode():
        assert module(torch.zeros(2, 3, 224, 224)).shape == (2, 1000)


def test_resnet50_without_weights_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="resnet50 ships no weights"):
        get_spec("resnet50").build(None)


def test_wrong_weights_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not-resnet.pth"
    torch.save({"layer.weight": torch.zeros(1)}, path)
    with pytest.raises(RuntimeError, match="state_dict"):
        get_spec("resnet50").build(path)
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 state dict"):
        get_spec("efficientnet-lite0").build(path)


def test_input_spec() -> None:
    for spec in REGISTRY.values():
        assert (spec.input_size, spec.preprocess.resize, spec.num_classes) == (224, 256, 1000)
        assert np.allclose(spec.preprocess.mean, (0.485, 0.456, 0.406))
