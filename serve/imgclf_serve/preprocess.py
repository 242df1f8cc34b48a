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
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image, UnidentifiedImageError

from imgclf_serve.errors import InvalidImage
from imgclf_serve.metadata import strip_metadata

# ImageLimits.max_pixels is checked before decoding, against a configurable limit; Pillow's
# fixed process-wide limit would only get in its way.
Image.MAX_IMAGE_PIXELS = None

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_ALPHA_BACKGROUND = (255, 255, 255)
# The formats the API documents; Pillow is not asked to parse any other (PSD, EPS, JPEG 2000,
# FITS ... are attack surface nobody asked for).
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")
ACCEPTED_NAMES = "JPEG, PNG, GIF, WebP, TIFF, BMP"
# Box-reduce only while the resampling that follows still has twice the output size to work
# from (Pillow's own `reducing_gap` advice: the result is then indistinguishable).
REDUCING_GAP = 2
EXIF_ORIENTATION_TAG = 0x0112
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_REDUCE_MODES = {"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"}
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MAX_REASON = 160


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on one encoded image: size, pixels and JPEG scans are checked before its
    pixels are decoded, the time while they are."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_jpeg_scans: int = 100
    max_decode_s: float | None = 10.0


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


def load_image(
    data: bytes,
    spec: PreprocessSpec,
    limits: ImageLimits,
    cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Encoded bytes -> normalised float32 array of shape (3, crop, crop).

    Raises InvalidImage with a reason a user can act on, or DecodeCancelled once
    `cancelled()` turns true (checked while reading and between stages).
    """
    budget = DecodeBudget(limits.max_decode_s, cancelled)
    image = decode(data, limits, draft_size=spec.resize, budget=budget)
    try:
        rgb = to_rgb(image)
    except Exception as exc:  # any Pillow failure is the image's
        raise InvalidImage(f"cannot convert {_kind(image.format)}: {_short(exc)}") from None
    budget.check()
    return to_array(center_crop_resize(rgb, spec), spec)


class DecodeCancelled(Exception):
    """The caller gave up while its image was decoding; the rest of the work is skipped."""


class DecodeBudget:
    """Time left for one image, and whether its caller is still waiting: checked on every
    read the decoder makes (64 KiB at a time for JPEG, PNG, GIF, WebP) and between stages."""

    def __init__(self, seconds: float | None = None, cancelled: Callable[[], bool] | None = None):
        self.seconds = seconds
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self._cancelled = cancelled

    def check(self) -> None:
        if self._cancelled is not None and self._cancelled():
            raise DecodeCancelled
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise InvalidImage(
                f"decoding took longer than the {self.seconds:g} s an image may take; "
                "send a smaller or simpler image"
            )


class _BudgetedReader(io.BytesIO):
    def __init__(self, data: bytes, budget: DecodeBudget) -> None:
        super().__init__(data)
        self._budget = budget

    def read(self, size: int | None = -1, /) -> bytes:
        self._budget.check()
        return super().read(size)


class _PillowFailed(Exception):
    """Pillow raised while opening, loading, reducing or turning an image upright: its own
    OSError/SyntaxError/ValueError, or what escapes its parsers on hostile input
    (struct.error, zlib.error, KeyError, IndexError, TypeError ...)."""

    def __init__(self, error: InvalidImage, orientation: int | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.orientation = orientation


# Raised by our own checks inside Pillow's calls (the budgeted reader); never remapped.
_OURS = (InvalidImage, DecodeCancelled)


def decode(
    data: bytes,
    limits: ImageLimits,
    draft_size: int | None = None,
    budget: DecodeBudget | None = None,
) -> Image.Image:
    """Open, check and fully decode an image, upright (EXIF orientation applied), in its own
    mode. With `draft_size`, a JPEG is decoded at a reduced scale and any image is reduced
    (box filter) while its short side stays at least 2 x `draft_size`, before anything else
    touches its pixels. An image whose metadata breaks the decoder is decoded again without
    its metadata (metadata.strip_metadata), as a browser would show it."""
    budget = budget or DecodeBudget()
    try:
        return _decode_once(data, limits, draft_size, budget, orientation=None)
    except _PillowFailed as first:
        stripped = strip_metadata(data)
        if stripped is None:
            raise first.error from None
        orientation = first.orientation
        if orientation is None:
            orientation = _orientation_of_block(stripped.exif) if stripped.exif else 1
        try:
            return _decode_once(stripped.data, limits, draft_size, budget, orientation)
        except _PillowFailed:
            raise first.error from None


def _decode_once(
    data: bytes,
    limits: ImageLimits,
    draft_size: int | None,
    budget: DecodeBudget,
    orientation: int | None,
) -> Image.Image:
    image = _open(data, limits, budget, orientation)
    kind = _kind(image.format)
    if image.format == "JPEG":
        _check_scans(data, limits)
    try:
        if draft_size is not None and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.load()
    except _OURS:
        raise
    except Exception as exc:  # any Pillow failure is the image's
        found = _orientation(image) if orientation is None else orientation
        raise _PillowFailed(InvalidImage(f"cannot decode {kind}: {_short(exc)}"), found) from None
    if orientation is None:
        orientation = _orientation(image)
    budget.check()
    try:
        if draft_size is not None:
            image = _reduce(image, draft_size * REDUCING_GAP)
            budget.check()
        return _upright(image, orientation)
    except _OURS:
        raise
    except Exception as exc:
        raise _PillowFailed(InvalidImage(f"cannot decode {kind}: {_short(exc)}"), None) from None


def check_header(data: bytes, limits: ImageLimits) -> Image.Image:
    """The checks that need no pixels (size, an accepted format, the pixel count); returns
    the opened, not yet decoded image."""
    try:
        return _open(data, limits, None, None)
    except _PillowFailed as failed:
        raise failed.error from None


def _open(
    data: bytes,
    limits: ImageLimits,
    budget: DecodeBudget | None,
    orientation: int | None,
) -> Image.Image:
    check_size(data, limits)
    reader = io.BytesIO(data) if budget is None else _BudgetedReader(data, budget)
    try:
        image = Image.open(reader, formats=ACCEPTED_FORMATS)
    except _OURS:
        raise
    except UnidentifiedImageError:
        raise _PillowFailed(_unrecognised(), orientation) from None
    except Exception as exc:
        error = InvalidImage(f"cannot decode image: {_short(exc)}")
        raise _PillowFailed(error, orientation) from None
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


def _check_scans(data: bytes, limits: ImageLimits) -> None:
    """Each scan of a progressive JPEG is a pass over the whole image; a few KB can hold
    thousands. SOS markers cannot occur inside entropy-coded data (0xFF is stuffed), so
    counting them counts the scans (plus any in an embedded thumbnail)."""
    scans = data.count(b"\xff\xda")
    if scans > limits.max_jpeg_scans:
        raise InvalidImage(
            f"JPEG has {scans} scans, over the limit of {limits.max_jpeg_scans}; "
            "re-encode it (ordinary progressive JPEGs have about 10)"
        )


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8), 1 when the EXIF block is missing or unreadable."""
    return _orientation_in(image.getexif)


def _orientation_of_block(exif_block: bytes) -> int:
    """The orientation in a raw EXIF block found in the container, 1 if unreadable."""

    def read() -> Image.Exif:
        exif = Image.Exif()
        exif.load(exif_block)
        return exif

    return _orientation_in(read)


def _orientation_in(read_exif: Callable[[], Image.Exif]) -> int:
    try:
        value = read_exif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # broken metadata is ignored, as browsers do
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION_TRANSPOSE else 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _ORIENTATION_TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


def _reduce(image: Image.Image, min_short_side: int) -> Image.Image:
    """Shrink by an integer factor with a box filter while the short side stays at least
    `min_short_side`; palette and 1-bit images become RGB(A)/L first (a box filter on
    palette indices would mix unrelated colours)."""
    factor = min(image.size) // min_short_side
    if factor < 2:
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    if image.mode in _REDUCE_MODES:
        return image.reduce(factor)
    width, height = image.size
    return image.resize((-(-width // factor), -(-height // factor)), Image.Resampling.BOX)


def _unrecognised() -> InvalidImage:
    return InvalidImage(
        f"cannot decode: not a recognised image format; accepted formats: {ACCEPTED_NAMES}"
    )


def _kind(image_format: str | None) -> str:
    return f"{image_format} image" if image_format else "image"


def _short(exc: BaseException) -> str:
    """A Pillow error as a short, safe reason: first line, no object addresses, bounded."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = _ADDRESS.sub("", text)
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode to 8-bit RGB.

    Transparent pixels are composited over white; 16-bit and 32-bit greyscale is scaled
    to 8 bits rather than clipped.
    """
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
