"""Strip an encoded image's metadata segments, leaving its pixels' container intact.

The decoder's second chance: an image whose pixels are fine but whose EXIF, XMP, ICC profile
or text block makes Pillow fail is decoded again without them, as a browser shows a photo
whatever its metadata. Only the container is parsed (segment lengths, chunk types); nothing is
decompressed. An input that does not parse returns None: it has no second chance.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# JPEG markers kept: APP0 (JFIF) and APP14 (Adobe: tells CMYK/YCCK colour transforms apart).
_JPEG_KEPT_APPS = {0xE0, 0xEE}
_JPEG_SOS = 0xDA
_JPEG_COM = 0xFE
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
# PNG chunks the pixels need; every other (ancillary) chunk is metadata to the classifier.
_PNG_KEPT = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS"}
_EXIF_HEADER = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WEBP_METADATA = {b"ICCP", b"EXIF", b"XMP "}
# VP8X flags of the metadata chunks: ICC profile, EXIF, XMP.
_WEBP_METADATA_FLAGS = 0x20 | 0x08 | 0x04


@dataclass(frozen=True)
class Stripped:
    """An image without its metadata, and the EXIF block it had (for its orientation)."""

    data: bytes
    exif: bytes | None


def strip_metadata(data: bytes) -> Stripped | None:
    """The image without its metadata segments; None if the format has none to strip here
    (GIF, BMP, TIFF), the container does not parse, or there was nothing to strip."""
    exif: list[bytes] = []
    if data.startswith(b"\xff\xd8"):
        stripped = _strip_jpeg(data, exif)
    elif data.startswith(_PNG_SIGNATURE):
        stripped = _strip_png(data, exif)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        stripped = _strip_webp(data, exif)
    else:
        return None
    if stripped is None or stripped == data:
        return None
    return Stripped(stripped, exif[0] if exif else None)


def _strip_jpeg(data: bytes, exif: list[bytes]) -> bytes | None:
    out = [data[:2]]
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            out.append(data[pos : pos + 2])
            pos += 2
            continue
        if marker == _JPEG_SOS:  # entropy-coded data follows; copy the rest as it is
            out.append(data[pos:])
            return b"".join(out)
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        is_metadata = (0xE1 <= marker <= 0xEF and marker not in _JPEG_KEPT_APPS) or (
            marker == _JPEG_COM
        )
        if not is_metadata:
            out.append(data[pos:end])
        elif marker == 0xE1 and data[pos + 4 : pos + 10] == _EXIF_HEADER:
            exif.append(data[pos + 4 : end])
        pos = end
    return None


def _strip_png(data: bytes, exif: list[bytes]) -> bytes | None:
    out = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        if kind in _PNG_KEPT:
            out.append(data[pos:end])
        elif kind == b"eXIf":
            exif.append(_EXIF_HEADER + data[pos + 8 : end - 4])
        if kind == b"IEND":
            return b"".join(out)
        pos = end
    return None


def _strip_webp(data: bytes, exif: list[bytes]) -> bytes | None:
    chunks = []
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > len(data):
            return None
        chunk = data[pos : min(end, len(data))]
        if kind == b"VP8X" and size >= 10:
            flags = chunk[8] & ~_WEBP_METADATA_FLAGS
            chunk = chunk[:8] + bytes([flags]) + chunk[9:]
        if kind not in _WEBP_METADATA:
            chunks.append(chunk)
        elif kind == b"EXIF":
            payload = data[pos + 8 : pos + 8 + size]
            exif.append(payload if payload.startswith(_EXIF_HEADER) else _EXIF_HEADER + payload)
        pos = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body
