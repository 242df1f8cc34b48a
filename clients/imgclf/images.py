"""Turn what a caller holds (bytes, a path, an open file, a PIL image) into encoded bytes."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeGuard, Union

if TYPE_CHECKING:
    from PIL import Image

ImageInput = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes], "Image.Image"]
"""An encoded image (bytes), a path to an image file, a binary file object, or a PIL image."""

# Modes PNG stores as they are; anything else (CMYK, YCbCr, LAB, HSV, F) goes through RGB.
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"})


def image_bytes(image: ImageInput) -> bytes:
    """The encoded bytes to send. A PIL image is encoded as PNG, so no pixel changes.

    Raises OSError when a path or file can't be read and TypeError for anything else.
    """
    if isinstance(image, bytes):
        return image
    if isinstance(image, (bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).read_bytes()
    read = getattr(image, "read", None)
    if callable(read):
        data = read()
        if not isinstance(data, bytes):
            raise TypeError("the file object must be opened in binary mode ('rb')")
        return data
    if _is_pil_image(image):
        return _encode_png(image)
    raise TypeError(
        f"cannot send a {type(image).__name__} as an image; pass bytes, a path, "
        "a binary file object or a PIL image"
    )


def describe(image: ImageInput) -> str:
    """A short name for messages: the path, or the kind of object."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    return type(image).__name__


def _is_pil_image(image: object) -> TypeGuard[Image.Image]:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(image, Image.Image)


def _encode_png(image: Image.Image) -> bytes:
    if image.mode not in _PNG_MODES:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
