"""preprocess.py: decoding, limits, orientation, colour modes, and equality with torchvision."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from imgclf_serve.errors import InvalidImage
from imgclf_serve.preprocess import (
    DecodeCancelled,
    ImageLimits,
    PreprocessSpec,
    center_crop_resize,
    check_header,
    decode,
    load_image,
    to_rgb,
)
from tests.imagegen import (
    encode,
    gradient,
    png_bomb,
    png_chunk,
    png_with_chunk,
    stored_for_orientation,
    with_orientation,
)

SPEC = PreprocessSpec()
LIMITS = ImageLimits()


def rgb_of(data: bytes) -> np.ndarray:
    return np.asarray(to_rgb(decode(data, LIMITS)))


def test_matches_torchvision_resize_crop_normalize(seed_images: dict[str, bytes]) -> None:
    reference = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(SPEC.mean, SPEC.std),
        ]
    )
    for name, data in seed_images.items():
        ours = load_image(data, SPEC, LIMITS)
        theirs = reference(Image.open(io.BytesIO(data)).convert("RGB")).numpy()
        assert ours.shape == (3, 224, 224) and ours.dtype == np.float32
        # At most one 8-bit level apart (rounding), in normalised units.
        assert np.abs(ours - theirs).max() <= 1.01 / (255 * min(SPEC.std)), name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    upright = gradient(64, 48)
    stored = stored_for_orientation(upright, orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    lossless = encode(stored, "PNG", exif=exif)
    assert np.array_equal(rgb_of(lossless), np.asarray(upright))
    # The same through JPEG (lossy, and decoded with draft mode).
    jpeg = rgb_of(with_orientation(stored, orientation)).astype(int)
    assert jpeg.shape == (48, 64, 3)
    assert np.abs(jpeg - np.asarray(upright, dtype=int)).mean() < 4


def test_grayscale_becomes_equal_channels() -> None:
    gray = gradient().convert("L")
    rgb = rgb_of(encode(gray))
    assert rgb.shape[-1] == 3
    assert np.array_equal(rgb[..., 0], np.asarray(gray))
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_cmyk_jpeg_converts_to_rgb() -> None:
    red = Image.new("RGB", (40, 30), (220, 20, 20)).convert("CMYK")
    rgb = rgb_of(encode(red, "JPEG", quality=95)).astype(int)
    assert rgb.shape == (30, 40, 3)
    assert rgb[..., 0].mean() > 180 and rgb[..., 1].mean() < 70


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 5, 10))
    rgb = rgb_of(encode(image))
    assert (rgb[:, :5] == (255, 0, 0)).all()
    assert (rgb[:, 5:] == (255, 255, 255)).all()


def test_palette_with_transparency_becomes_white() -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    image.paste(1, (0, 0, 8, 4))
    rgb = rgb_of(encode(image, "PNG", transparency=0))
    assert (rgb[:4] == (0, 128, 0)).all()
    assert (rgb[4:] == (255, 255, 255)).all()


def test_sixteen_bit_grayscale_is_scaled_not_clipped() -> None:
    levels = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(levels))
    rgb = rgb_of(data)
    assert rgb[0, :, 0].tolist() == [0, 64, 128, 255]


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("P", (16, 16), i) for i in (1, 2)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert (rgb_of(data) == (255, 0, 0)).all()


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    big = gradient(4000, 3000)
    image = decode(encode(big, "JPEG"), LIMITS, draft_size=256)
    assert image.size == (500, 375)  # 1/8 scale; short side still >= 256
    assert load_image(encode(big, "JPEG"), SPEC, LIMITS).shape == (3, 224, 224)


@pytest.mark.parametrize("size", [(1, 10000), (10000, 1), (3, 700)])
def test_extreme_aspect_ratios(size: tuple[int, int]) -> None:
    out = center_crop_resize(gradient(*size), SPEC)
    assert out.size == (224, 224)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "image is empty"),
        (b"\x00\x01 random bytes \xff" * 10, "not a recognised image format"),
        (b"<html><body>not an image</body></html>", "not a recognised image format"),
    ],
)
def test_undecodable_bytes_are_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidImage, match=reason):
        load_image(data, SPEC, LIMITS)


def test_truncated_jpeg_is_rejected(seed_images: dict[str, bytes]) -> None:
    data = seed_images["tiger.jpg"]
    with pytest.raises(InvalidImage, match="cannot decode JPEG image"):
        load_image(data[: len(data) // 2], SPEC, LIMITS)


def test_image_over_the_byte_limit_is_rejected() -> None:
    with pytest.raises(InvalidImage, match="over the limit of 100 bytes"):
        decode(encode(gradient()), ImageLimits(max_bytes=100))


def test_decompression_bomb_is_rejected_before_decoding() -> None:
    bomb = png_bomb(20000, 20000)  # 400 M pixels in well under 1 MB
    assert len(bomb) < 1_000_000
    with pytest.raises(InvalidImage, match=r"20000x20000 = 400000000 pixels, over the limit"):
        load_image(bomb, SPEC, LIMITS)


def test_pixel_limit_is_configurable() -> None:
    with pytest.raises(InvalidImage, match="over the limit of 1000 pixels"):
        decode(encode(gradient(64, 48)), ImageLimits(max_pixels=1000))


def test_crop_larger_than_resize_is_refused() -> None:
    with pytest.raises(ValueError, match="crop"):
        PreprocessSpec(resize=200, crop=224)


def test_header_check_refuses_what_decoding_would_without_decoding(
    seed_images: dict[str, bytes],
) -> None:
    check_header(seed_images["tiger.jpg"], LIMITS)
    with pytest.raises(InvalidImage, match="not a recognised image format"):
        check_header(b"<html>not an image</html>", LIMITS)
    with pytest.raises(InvalidImage, match="image is empty"):
        check_header(b"", LIMITS)
    with pytest.raises(InvalidImage, match="400000000 pixels, over the limit"):
        check_header(png_bomb(20000, 20000), LIMITS)


@pytest.mark.parametrize(
    "fmt", ["ICO", "TGA", "PCX", "PPM", "JPEG2000", "SGI", "DDS", "IM", "MSP", "XBM", "QOI"]
)
def test_formats_outside_the_allowlist_are_refused(fmt: str) -> None:
    picture = gradient(32, 32)
    data = encode(picture.convert("1") if fmt in ("MSP", "XBM") else picture, fmt)
    Image.open(io.BytesIO(data)).load()  # Pillow itself would decode it
    with pytest.raises(InvalidImage, match="accepted formats: JPEG, PNG, GIF, WebP, TIFF, BMP"):
        load_image(data, SPEC, LIMITS)
    with pytest.raises(InvalidImage, match="accepted formats"):
        check_header(data, LIMITS)


def test_jpeg_with_too_many_scans_is_refused_before_decoding() -> None:
    data = encode(gradient(64, 48), "JPEG", progressive=True)
    scans = data.count(b"\xff\xda")
    assert 1 < scans < LIMITS.max_jpeg_scans
    load_image(data, SPEC, LIMITS)
    with pytest.raises(InvalidImage, match=f"JPEG has {scans} scans, over the limit of 2"):
        load_image(data, SPEC, ImageLimits(max_jpeg_scans=2))


@pytest.mark.parametrize("mode", ["I;16", "I", "F", "P", "RGBA", "1"])
def test_large_images_are_reduced_in_their_own_mode_before_converting(mode: str) -> None:
    big = Image.new(mode, (2600, 2100))
    data = encode(big, "TIFF", compression="tiff_deflate") if mode in ("I", "F") else encode(big)
    image = decode(data, LIMITS, draft_size=256)
    # Reduced 4x (short side 525 >= 2 x 256); 16/32-bit modes are still 16/32-bit here.
    assert image.size == (650, 525)
    assert image.mode == {"P": "RGB", "1": "L", "I;16": "I;16"}.get(mode, image.mode)
    assert load_image(data, SPEC, LIMITS).shape == (3, 224, 224)


def test_reduction_keeps_results_close_to_torchvision() -> None:
    big = gradient(2400, 1800)
    ours = load_image(encode(big, "PNG"), SPEC, LIMITS)
    reference = transforms.Compose(
        [transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()]
    )(big).numpy()
    normalised = (reference - np.asarray(SPEC.mean)[:, None, None]) / np.asarray(SPEC.std)[
        :, None, None
    ]
    assert np.abs(ours - normalised).max() <= 2.01 / (255 * min(SPEC.std))


def test_a_cancelled_decode_stops_between_reads() -> None:
    data = encode(gradient(2000, 1500), "PNG")
    reads = 0

    def cancelled() -> bool:
        nonlocal reads
        reads += 1
        return reads > 3  # the caller gives up after the decoder's third read

    with pytest.raises(DecodeCancelled):
        load_image(data, SPEC, LIMITS, cancelled=cancelled)
    assert reads == 4


def test_decoding_past_the_time_budget_is_refused() -> None:
    data = encode(gradient(2000, 1500), "PNG")
    with pytest.raises(InvalidImage, match=r"longer than the 1e-06 s an image may take"):
        load_image(data, SPEC, ImageLimits(max_decode_s=1e-6))


def test_pillow_errors_become_short_invalid_image_reasons() -> None:
    # An empty sRGB chunk makes Pillow raise ValueError at open; without metadata the
    # picture decodes, so the image classifies.
    data = png_with_chunk(gradient(64, 48), b"sRGB", b"")
    assert load_image(data, SPEC, LIMITS).shape == (3, 224, 224)
    # A broken IDAT cannot be saved by stripping: INVALID_ARGUMENT with Pillow's reason.
    valid = encode(gradient(64, 48), "PNG")
    header = valid[: 8 + 25]  # signature + IHDR
    broken = header + png_chunk(b"IDAT", b"\x78\x9c" + b"\xff" * 64) + png_chunk(b"IEND", b"")
    with pytest.raises(InvalidImage, match=r"^cannot decode PNG image: .{1,160}$"):
        load_image(broken, SPEC, LIMITS)
