"""Which files `imgclf classify` sends: named files as given, folders walked with --recursive."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".jfif", ".jpe"}
)


class InputError(Exception):
    """A path on the command line that can't be used; the message says why."""


def check_paths(paths: Sequence[str], recursive: bool) -> list[Path]:
    """Fail before any call for a missing file, or a folder without --recursive."""
    checked = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"{raw}: no such file or directory")
        if path.is_dir() and not recursive:
            raise InputError(f"{raw} is a folder; pass --recursive to classify the images in it")
        checked.append(path)
    return checked


def image_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Named files as given; folders walked in sorted order for image suffixes, skipping
    hidden files and folders."""
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        for found in sorted(path.rglob("*")):
            relative = found.relative_to(path).parts
            if any(part.startswith(".") for part in relative):
                continue
            if found.is_file() and found.suffix.lower() in IMAGE_SUFFIXES:
                yield found
