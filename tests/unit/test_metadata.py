"""Hostile metadata never fails a call: generated images in every accepted format whose
EXIF/XMP/ICC/text/comment blocks hypothesis fills with random and mutated bytes (the
containers stay valid: lengths and CRCs are right) must still classify, and byte-level
mutations of whole files may fail only with InvalidImage."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgclf_serve.errors import InvalidImage
from imgclf_serve.metadata import strip_metadata
from imgclf_serve.preprocess import ImageLimits, PreprocessSpec, decode, load_image
from tests.imagegen import (
    encode,
    gif_with_comment,
    gradient,
    jpeg_with_segment,
    png_with_chunk,
    png_with_chunk_after_ihdr,
    stored_for_orientation,
    tiff_with_tags,
    valid_exif,
    webp_with_chunk,
)

SPEC = PreprocessSpec()
LIMITS = ImageLimits()
PICTURE = gradient(96, 64)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutated(base: bytes) -> st.SearchStrategy[bytes]:
    """`base` with a few bytes overwritten, cut short, or extended: deep parser paths that
    random bytes would never reach."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(base)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        cut = draw(st.integers(len(data) // 2, len(data) + 16))
        return bytes(data[:cut]) + draw(st.binary(max_size=max(0, cut - len(data))))

    return build()


PAYLOADS = st.one_of(st.binary(max_size=2048), mutated(valid_exif(6)))


def classifies(data: bytes) -> None:
    pixels = load_image(data, SPEC, LIMITS)
    assert pixels.shape == (3, 224, 224) and np.isfinite(pixels).all()


@FUZZ
@given(marker=st.sampled_from([0xE1, 0xE2, 0xED, 0xFE]), payload=PAYLOADS)
def test_jpeg_metadata_segments(marker: int, payload: bytes) -> None:
    classifies(jpeg_with_segment(PICTURE, marker, b"Exif\x00\x00" + payload[6:]))
    classifies(jpeg_with_segment(PICTURE, marker, payload))


@FUZZ
@given(
    kind=st.sampled_from([b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"sRGB", b"gAMA"]),
    payload=PAYLOADS,
)
def test_png_metadata_chunks(kind: bytes, payload: bytes) -> None:
    classifies(png_with_chunk(PICTURE, kind, payload))


@FUZZ
@given(kind=st.sampled_from([b"EXIF", b"XMP ", b"ICCP"]), payload=PAYLOADS)
def test_webp_metadata_chunks(kind: bytes, payload: bytes) -> None:
    classifies(webp_with_chunk(PICTURE, kind, payload))


@FUZZ
@given(tag=st.sampled_from([34675, 700, 33723]), payload=st.binary(min_size=1, max_size=512))
def test_tiff_metadata_tags(tag: int, payload: bytes) -> None:
    classifies(tiff_with_tags(PICTURE, {tag: payload}))


@FUZZ
@given(payload=st.binary(min_size=1, max_size=2048))
def test_gif_comments(payload: bytes) -> None:
    classifies(gif_with_comment(PICTURE, payload))


SEEDS = {
    "JPEG": jpeg_with_segment(PICTURE, 0xE1, valid_exif(6)),
    "PNG": png_with_chunk(PICTURE, b"eXIf", valid_exif(6)[6:]),
    "WEBP": webp_with_chunk(PICTURE, b"EXIF", valid_exif(6)),
    "TIFF": tiff_with_tags(PICTURE, {34675: b"icc"}),
    "GIF": gif_with_comment(PICTURE, b"hello"),
    "BMP": encode(PICTURE, "BMP"),
}


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@FUZZ
@given(data=st.data())
def test_mutated_files_fail_only_as_invalid_images(fmt: str, data: st.DataObject) -> None:
    image = data.draw(mutated(SEEDS[fmt]))
    try:
        classifies(image)
    except InvalidImage as exc:
        assert exc.message and len(exc.message) < 300 and " at 0x" not in exc.message


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_survives_when_another_block_breaks_the_decoder(orientation: int) -> None:
    upright = gradient(64, 48)
    stored = stored_for_orientation(upright, orientation)
    exif_first = png_with_chunk(stored, b"eXIf", valid_exif(orientation)[6:])
    # An empty gAMA chunk before the eXIf one: Pillow fails to open the file at all.
    broken = png_with_chunk_after_ihdr(exif_first, b"gAMA", b"")
    with pytest.raises(ValueError, match="Truncated gAMA"):
        Image.open(io.BytesIO(broken))
    assert np.array_equal(np.asarray(decode(broken, LIMITS)), np.asarray(upright))


def test_strip_metadata_keeps_pixels_and_drops_blocks() -> None:
    for data in (SEEDS["JPEG"], SEEDS["PNG"], SEEDS["WEBP"]):
        stripped = strip_metadata(data)
        assert stripped is not None and len(stripped.data) < len(data)
        assert stripped.exif == valid_exif(6)
        before = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        after = Image.open(io.BytesIO(stripped.data))
        assert not after.getexif()
        assert np.array_equal(before, np.asarray(after.convert("RGB")))
    assert strip_metadata(SEEDS["BMP"]) is None
    assert strip_metadata(b"\xff\xd8\xff\xe1\xff\xff") is None  # a segment past the end
