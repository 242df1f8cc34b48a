"""Decode, validate and normalise an encoded image: pure functions, no Ray, no torch.

The output equals torchvision's `Resize(resize) + CenterCrop(crop) + ToTensor() +
Normalize(mean, std)` on the RGB image (to float rounding), computed in a way that is safe and
fast on untrusted input: the pixel count is checked from the header before any pixel is
decoded; a large JPEG is decoded at a reduced scale (Pillow's draft mode) that still leaves
the short side at least `resize` pixels; and only the centre crop is resampled, straight from
the source region it covers, so a 1x10000 image costs no more than a square one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgclf_serve.errors import InvalidImage

# ImageLimits.max_pixels is checked before decoding, against a configurable limit; Pillow's
# fixed process-wide limit would only get in its way.
Image.MAX_IMAGE_PIXELS = None

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_ALPHA_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on one encoded image, checked before its pixels are decoded."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class PreprocessSpec:
    """How a model wants its input: resize the short side, centre-crop, normalise."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if not 0 < self.crop <= self.resize:
            raise ValueError(f"crop ({self.crop}) must be in [1, resize ({self.resize})]")

    @cached_property
    def scale(self) -> np.ndarray:
        """Per-channel factor from 8-bit pixels to normalised values: 1 / (255 std)."""
        return np.asarray([1.0 / (255.0 * s) for s in self.std], dtype=np.float32)

    @cached_property
    def shift(self) -> np.ndarray:
        """Per-channel offset subtracted after scaling: mean / std."""
        pairs = zip(self.mean, self.std, strict=True)
        return np.asarray([m / s for m, s in pairs], dtype=np.float32)


def load_image(data: bytes, spec: PreprocessSpec, limits: ImageLimits) -> np.ndarray:
    """Encoded bytes -> normalised float32 array of shape (3, crop, crop).

    Raises InvalidImage with a reason a user can act on.
    """
    image = decode(data, limits, draft_size=spec.resize)
    return to_array(center_crop_resize(to_rgb(image), spec), spec)


_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, MemoryError)


def decode(data: bytes, limits: ImageLimits, draft_size: int | None = None) -> Image.Image:
    """Open and fully decode an image, refusing oversize files and decompression bombs."""
    image = check_header(data, limits)
    try:
        if draft_size is not None and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.load()
    except _DECODE_ERRORS as exc:
        kind = f"{image.format} image" if image.format else "image"
        raise InvalidImage(f"cannot decode {kind}: {exc}") from None
    return image


def check_header(data: bytes, limits: ImageLimits) -> Image.Image:
    """The checks that need no pixels (size, a known format, the pixel count); returns the
    opened, not yet decoded image."""
    check_size(data, limits)
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidImage("cannot decode: not a recognised image format") from None
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"cannot decode image: {exc}") from None
    _check_pixels(image.size, limits)
    return image


def check_size(data: bytes, limits: ImageLimits) -> None:
    """Refuse empty and oversize files; cheap enough to run before shipping the bytes."""
    if not data:
        raise InvalidImage("image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise InvalidImage(
            f"image is {len(data)} bytes, over the limit of {limits.max_bytes} bytes"
        )


def _check_pixels(size: tuple[int, int], limits: ImageLimits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise InvalidImage(
            f"image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{limits.max_pixels} pixels"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation and convert any mode to 8-bit RGB.

    Transparent pixels are composited over white; 16-bit and 32-bit greyscale is scaled
    to 8 bits rather than clipped.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _scale_to_8bit(image).convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    full_scale = 1.0 if image.mode == "F" else (65535.0 if pixels.max(initial=0) > 255 else 255.0)
    scaled = np.clip(pixels / full_scale * 255.0, 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def center_crop_resize(image: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """Resize the short side to spec.resize, then take the centre spec.crop square.

    Sizes and offsets are rounded as torchvision's Resize and CenterCrop round them, and the
    crop is resampled straight from the source region it covers: the same pixels as resizing
    the whole image and cropping, at the cost of the crop alone.
    """
    width, height = image.size
    if width <= height:
        new_width, new_height = spec.resize, int(spec.resize * height / width)
    else:
        new_width, new_height = int(spec.resize * width / height), spec.resize
    crop = spec.crop
    left = round((new_width - crop) / 2.0)
    top = round((new_height - crop) / 2.0)
    scale_x, scale_y = width / new_width, height / new_height
    box = (left * scale_x, top * scale_y, (left + crop) * scale_x, (top + crop) * scale_y)
    return image.resize((crop, crop), Image.Resampling.BILINEAR, box=box)


def to_array(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """8-bit RGB image -> (3, H, W) float32, scaled to [0, 1] and normalised by mean/std."""
    pixels = np.asarray(image, dtype=np.float32)
    return np.ascontiguousarray((pixels * spec.scale - spec.shift).transpose(2, 0, 1))
