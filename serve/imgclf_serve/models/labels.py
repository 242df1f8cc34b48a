"""ImageNet class names: torchvision's category list, written to imagenet_labels.txt so a
replica need not import torchvision (about 160 MB per process) just to name classes.
tests/unit/test_models.py checks the file still equals torchvision's list."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

LABELS_FILE = Path(__file__).with_name("imagenet_labels.txt")


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    return tuple(LABELS_FILE.read_text(encoding="utf-8").splitlines())
