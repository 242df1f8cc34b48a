"""Images the tests make themselves: odd modes, EXIF orientations, broken and hostile files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

EXIF_ORIENTATION_TAG = 0x0112


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def with_orientation(image: Image.Image, orientation: int) -> bytes:
    """A JPEG of `image` whose EXIF says to display it with `orientation` (1-8)."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    return encode(image, "JPEG", exif=exif, quality=95)


def stored_for_orientation(image: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera stores so that applying `orientation` shows `image` upright."""
    inverse = {
        1: lambda im: im,
        2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
        4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
        5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
        6: lambda im: im.transpose(Image.Transpose.ROTATE_90),
        7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
        8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
    }
    return inverse[orientation](image)


def png_bomb(width: int, height: int) -> bytes:
    """A valid, tiny greyscale PNG that decodes to width x height zero pixels."""
    row = b"\x00" + b"\x00" * width  # filter byte + pixels
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    """An RGB image whose every pixel differs, so any flip or rotation shows."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    pixels = np.stack([x, y, 255 - (x + y) / 2], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with its length and a correct CRC."""
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_with_chunk(image: Image.Image, kind: bytes, payload: bytes) -> bytes:
    """A PNG of `image` with one extra chunk (valid length and CRC) right after IHDR."""
    return png_with_chunk_after_ihdr(encode(image, "PNG"), kind, payload)


def png_with_chunk_after_ihdr(data: bytes, kind: bytes, payload: bytes) -> bytes:
    after_ihdr = 8 + 12 + struct.unpack(">I", data[8:12])[0]
    return data[:after_ihdr] + png_chunk(kind, payload) + data[after_ihdr:]


def jpeg_with_segment(image: Image.Image, marker: int, payload: bytes) -> bytes:
    """A JPEG of `image` with one extra marker segment (e.g. 0xE1 APP1 for EXIF/XMP, 0xE2
    APP2 for ICC, 0xFE comment) right after SOI; `payload` is cut to what a segment holds."""
    payload = payload[:65533]
    data = encode(image, "JPEG", quality=90)
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def webp_with_chunk(image: Image.Image, kind: bytes, payload: bytes) -> bytes:
    """An extended (VP8X) WebP of `image` whose `kind` chunk (b"EXIF", b"XMP ", b"ICCP")
    holds `payload`, with the VP8X flag for it set and every size consistent."""
    out = io.BytesIO()
    image.save(out, "WEBP", exif=valid_exif(), xmp=b"<x/>", icc_profile=b"icc")
    data = out.getvalue()
    chunks = []
    pos = 12
    while pos + 8 <= len(data):
        this = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = payload if this == kind else data[pos + 8 : pos + 8 + size]
        chunks.append(this + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1))
        pos += 8 + size + (size & 1)
    riff = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(riff)) + riff


def tiff_with_tags(image: Image.Image, tags: dict[int, bytes]) -> bytes:
    """A TIFF of `image` carrying `tags` (e.g. 34675 ICC profile, 700 XMP) as raw bytes."""
    return encode(image, "TIFF", tiffinfo=tags)


def gif_with_comment(image: Image.Image, comment: bytes) -> bytes:
    return encode(image.convert("P"), "GIF", comment=comment[:65535])


def valid_exif(orientation: int = 1) -> bytes:
    """A well-formed EXIF APP1 payload ("Exif\\0\\0" + TIFF structure) with a few tags."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    exif[0x010F] = "imgclf camera"
    exif[0x0132] = "2026:12:01 00:00:00"
    return exif.tobytes()  # starts with b"Exif\0\0"
