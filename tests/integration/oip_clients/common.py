"""What the client scripts share: the seed images, a caller's own preprocessing for the PIXELS
input (resize the short side to 256, centre-crop 224, ImageNet mean and std, channels first),
and the JSON they print. Pillow and numpy only, as a caller's code would have."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MODEL = "efficientnet-lite0"
SEEDS = ("tiger.jpg", "kitten_small.jpg", "strawberry.jpg")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def arguments() -> tuple[str, list[bytes]]:
    target, images_dir = sys.argv[1], Path(sys.argv[2])
    return target, [(images_dir / name).read_bytes() for name in SEEDS]


def preprocessed(encoded: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(encoded)).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    pixels = (np.asarray(image, dtype=np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def top1(labels: np.ndarray) -> list[str]:
    return [row[0].decode() for row in labels]


def emit(seen: dict[str, Any]) -> None:
    json.dump(seen, sys.stdout, default=lambda value: np.asarray(value).tolist())
