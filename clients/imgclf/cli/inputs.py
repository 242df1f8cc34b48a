"""Which images `imgclf classify` sends: named files as given, folders walked with
--recursive, and `-` for one image read from standard input."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".jfif", ".jpe"}
)
STDIN = "-"


class InputError(Exception):
    """A path on the command line that can't be used; the message says why."""


@dataclass(frozen=True)
class Source:
    """One image to send: its name in the output, and a path or the bytes read from stdin."""

    name: str
    image: Path | bytes


def sources(paths: Sequence[str], recursive: bool, stdin: BinaryIO) -> list[Source]:
    """Every image to send, in order; fails before any call for a missing file, a folder
    without --recursive, or `-` given twice."""
    checked = check_paths([p for p in paths if p != STDIN], recursive)
    if paths.count(STDIN) > 1:
        raise InputError("'-' (standard input) may be given once")
    found: list[Source] = []
    remaining = iter(checked)
    for raw in paths:
        if raw == STDIN:
            found.append(Source(STDIN, stdin.read()))
            continue
        path = next(remaining)
        found += (
            [Source(str(f), f) for f in image_files([path])]
            if recursive
            else [Source(str(path), path)]
        )
    return found


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
