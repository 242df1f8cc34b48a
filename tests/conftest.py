"""Shared test data: the prototype's seed images and what the embedded model says of them."""

from __future__ import annotations

from pathlib import Path

import pytest

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
