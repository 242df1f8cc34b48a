"""A corpus of hostile and odd images (generated here from the seed images) through one real
ClassifyBatch: valid ones classify with the right top-1 (EXIF orientation respected), invalid
ones fail alone with INVALID_ARGUMENT and a reason, no message leaks internals, and no replica
restarts. Valid pixels with broken metadata (EXIF, ICC, text chunks) classify; formats outside
the accepted six are refused. Reports the counts it saw."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from tests.imagegen import (
    encode,
    jpeg_with_segment,
    png_bomb,
    png_with_chunk,
    stored_for_orientation,
    valid_exif,
    webp_with_chunk,
    with_orientation,
)
from tests.integration.conftest import assert_no_internals, replicas_of
from tests.integration.harness import report

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def corpus(tiger_jpeg: bytes) -> list[tuple[str, bytes, str | None]]:
    """(name, bytes, expected top-1 label or None for "must fail with INVALID_ARGUMENT")."""
    tiger = Image.open(io.BytesIO(tiger_jpeg)).convert("RGB")
    png, webp = encode(tiger, "PNG"), encode(tiger, "WEBP", quality=90)
    gif, tiff = encode(tiger.convert("P"), "GIF"), encode(tiger, "TIFF")
    frames = [tiger, tiger.rotate(5), tiger.rotate(10)]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    palette_alpha = tiger.convert("RGBA").convert("P", palette=Image.Palette.ADAPTIVE)
    palette_alpha.info["transparency"] = 0
    sixteen_bit = Image.fromarray(np.asarray(tiger.convert("L")).astype(np.uint16) * 257)
    cases: list[tuple[str, bytes, str | None]] = [
        ("PNG", png, "tiger"),
        ("WebP", webp, "tiger"),
        ("TIFF", tiff, "tiger"),
        ("palette GIF", gif, "tiger"),
        ("animated GIF (first frame)", animated.getvalue(), "tiger"),
        ("CMYK JPEG", encode(tiger.convert("CMYK"), "JPEG", quality=95), "tiger"),
        ("palette PNG with transparency", encode(palette_alpha, "PNG"), "tiger"),
        ("valid JPEG + trailing garbage", tiger_jpeg + b"\x00garbage" * 64, "tiger"),
        ("16-bit greyscale PNG", encode(sixteen_bit, "PNG"), None),  # decodes; label not asserted
        ("1x10000 strip", encode(Image.new("RGB", (1, 10000), (90, 60, 30)), "PNG"), None),
        ("10000x1 strip", encode(Image.new("RGB", (10000, 1), (90, 60, 30)), "PNG"), None),
    ]
    cases += [
        (f"EXIF orientation {o}", with_orientation(stored_for_orientation(tiger, o), o), "tiger")
        for o in range(1, 9)
    ]
    garbage = bytes(range(256)) * 4
    broken_exif = valid_exif(6)[:20] + b"\xff" * 40  # an IFD whose entries run off its end
    # Valid pixels, broken metadata: classified with the metadata ignored, as browsers do.
    cases += [
        ("JPEG, broken EXIF block", jpeg_with_segment(tiger, 0xE1, broken_exif), "tiger"),
        ("JPEG, garbage APP2 (ICC)", jpeg_with_segment(tiger, 0xE2, garbage), "tiger"),
        ("PNG, empty gAMA chunk", png_with_chunk(tiger, b"gAMA", b""), "tiger"),
        (
            "PNG, garbage iCCP chunk",
            png_with_chunk(tiger, b"iCCP", b"p\x00\x00" + garbage),
            "tiger",
        ),
        ("PNG, garbage eXIf chunk", png_with_chunk(tiger, b"eXIf", garbage), "tiger"),
        ("WebP, garbage EXIF chunk", webp_with_chunk(tiger, b"EXIF", garbage), "tiger"),
        ("WebP, garbage ICCP chunk", webp_with_chunk(tiger, b"ICCP", garbage), "tiger"),
        ("progressive JPEG", encode(tiger, "JPEG", quality=90, progressive=True), "tiger"),
    ]
    invalid: list[tuple[str, bytes, str | None]] = [
        ("zero bytes", b"", "INVALID"),
        ("truncated PNG", png[: len(png) // 2], "INVALID"),
        ("corrupt PNG (bad CRC)", png[:40] + bytes(64) + png[104:], "INVALID"),
        ("truncated GIF", gif[: len(gif) // 3], "INVALID"),
        ("truncated TIFF", tiff[:200], "INVALID"),
        ("truncated WebP", webp[: len(webp) // 2], "INVALID"),
        ("HTML named .jpg", b"<!doctype html><html><body>not an image</body></html>", "INVALID"),
        ("PNG bomb 20000x20000", png_bomb(20000, 20000), "INVALID"),
        ("JPEG 2000 (not an accepted format)", encode(tiger, "JPEG2000"), "INVALID"),
        ("TGA (not an accepted format)", encode(tiger, "TGA"), "INVALID"),
        ("ICO (not an accepted format)", encode(tiger, "ICO"), "INVALID"),
        ("JPEG with 300 scan markers", tiger_jpeg + b"\xff\xda" * 300, "INVALID"),
    ]
    return cases + invalid


def test_hostile_corpus_in_one_batch(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    tiger = seed_images["tiger.jpg"]
    warm = pb.ClassifyBatchRequest(images=[tiger] * 8)
    replicas_before = set(replicas_of(stub.ClassifyBatch(warm, timeout=120)))
    cases = corpus(tiger)
    response = stub.ClassifyBatch(
        pb.ClassifyBatchRequest(images=[data for _, data, _ in cases], top_k=1), timeout=300
    )
    assert len(response.items) == len(cases)
    outcome: Counter[str] = Counter()
    wrong = []
    for index, ((name, _, expected), item) in enumerate(zip(cases, response.items, strict=True)):
        if expected == "INVALID":
            outcome["refused"] += 1
            if not item.HasField("error") or item.error.code != 3:
                wrong.append(f"{name}: expected INVALID_ARGUMENT, got {item}")
                continue
            assert item.error.index == index
            assert item.error.reason == pb.ERROR_REASON_INVALID_IMAGE
            assert_no_internals(item.error.message)
        else:
            outcome["classified"] += 1
            if item.HasField("error"):
                wrong.append(f"{name}: {item.error.message}")
            elif expected and item.predictions[0].label != expected:
                wrong.append(f"{name}: top-1 {item.predictions[0].label!r}, not {expected!r}")
    report(
        "hostile images",
        f"{len(cases)} images in one ClassifyBatch: {outcome['classified']} valid ones "
        f"classified, {outcome['refused']} refused with INVALID_ARGUMENT; {len(wrong)} wrong",
    )
    assert not wrong, "\n".join(wrong)
    assert set(replicas_of(stub.ClassifyBatch(warm, timeout=120))) == replicas_before
