"""The worst case per image: time and memory to decode one image at the limits, per format
and mode (`make bench-decode`; RELIABILITY.md "Decode budgets" quotes the results).

Each case is an image at the pixel limit (40 MP) or, where the format cannot compress to the
byte limit (BMP), at the byte limit (20 MB). Each is decoded by `preprocess.load_image`, as a
replica does, in a fresh process: its peak RSS over the RSS before the call (VmHWM after a
reset, over VmRSS) is the memory the image needs; the wall time is one decode thread's time.
Three repeats, median and range.
"""

from __future__ import annotations

import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench import report

RESULTS = Path(__file__).parent / "results"
REPEATS = 3
# 7296 x 5472 = 39.9 M pixels, under the default 40 M limit; WebP sides stop at 16383.
WIDTH, HEIGHT = 7296, 5472

# ru_maxrss would include the parent's pages from before exec; VmHWM, reset through
# /proc/self/clear_refs (Linux >= 4.0), is this process's own peak from the reset on.
CHILD = """
import sys, time
from pathlib import Path
from imgclf_serve.preprocess import ImageLimits, PreprocessSpec, load_image
from imgclf_serve.errors import InvalidImage

def status_kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

data = Path(sys.argv[1]).read_bytes()
spec, limits = PreprocessSpec(), ImageLimits(max_decode_s=None)
load_image(Path(sys.argv[2]).read_bytes(), spec, limits)  # warm Pillow's code paths
Path("/proc/self/clear_refs").write_text("5")
before = status_kb("VmRSS")
started = time.perf_counter()
try:
    load_image(data, spec, limits)
    outcome = "decoded"
except InvalidImage as exc:
    outcome = "refused: " + exc.message
elapsed = time.perf_counter() - started
peak = status_kb("VmHWM")
print(elapsed, (peak - before) / 1024, outcome, sep="\\t")
"""


def _gradient(width: int, height: int, mode: str = "RGB") -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    red = np.broadcast_to(x, (height, width)).astype(np.uint8)
    green = np.broadcast_to(y, (height, width)).astype(np.uint8)
    blue = ((red.astype(np.uint16) + green) // 2).astype(np.uint8)
    return Image.fromarray(np.stack([red, green, blue], axis=-1), "RGB").convert(mode)


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def _sixteen_bit() -> Image.Image:
    grey = np.asarray(_gradient(WIDTH, HEIGHT, "L"), dtype=np.uint16) * 257
    return Image.fromarray(grey)


def _float() -> Image.Image:
    grey = np.asarray(_gradient(WIDTH, HEIGHT, "L"), dtype=np.float32) / 255
    return Image.fromarray(grey, mode="F")


CASES: dict[str, Callable[[], bytes]] = {
    "JPEG baseline, 40 MP": lambda: _encode(_gradient(WIDTH, HEIGHT), "JPEG", quality=90),
    "JPEG progressive, 40 MP": lambda: _encode(
        _gradient(WIDTH, HEIGHT), "JPEG", quality=90, progressive=True
    ),
    "PNG RGB, 40 MP": lambda: _encode(_gradient(WIDTH, HEIGHT), "PNG"),
    "PNG RGBA, 40 MP": lambda: _encode(_gradient(WIDTH, HEIGHT, "RGBA"), "PNG"),
    "PNG palette, 40 MP": lambda: _encode(_gradient(WIDTH, HEIGHT, "P"), "PNG"),
    "PNG 16-bit grey, 40 MP": lambda: _encode(_sixteen_bit(), "PNG"),
    "TIFF float32 grey (deflate), 40 MP": lambda: _encode(
        _float(), "TIFF", compression="tiff_deflate"
    ),
    "WebP lossless, 16383x2441 (40 MP)": lambda: _encode(
        _gradient(16383, 2441), "WEBP", lossless=True, method=0
    ),
    "GIF, 40 MP": lambda: _encode(_gradient(WIDTH, HEIGHT, "P"), "GIF"),
    "BMP 24-bit at the byte limit (20 MB, 6.99 MP)": lambda: _encode(_gradient(3056, 2286), "BMP"),
}


def measure(case: str, data: bytes, warm: Path) -> dict[str, object]:
    with tempfile.NamedTemporaryFile(suffix=".img") as image:
        image.write(data)
        image.flush()
        runs = []
        for _ in range(REPEATS):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, image.name, str(warm)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            seconds, megabytes, outcome = out.split("\t")
            runs.append((float(seconds), float(megabytes), outcome))
    seconds = [run[0] for run in runs]
    megabytes = [run[1] for run in runs]
    return {
        "case": case,
        "bytes": len(data),
        "outcome": runs[0][2],
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_range": [round(min(seconds), 3), round(max(seconds), 3)],
        "peak_mb_median": round(statistics.median(megabytes), 1),
        "peak_mb_range": [round(min(megabytes), 1), round(max(megabytes), 1)],
    }


def main() -> None:
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    warm = Path(__file__).parents[1] / "tests" / "data" / "images" / "tiger.jpg"
    rows = []
    for case, build in CASES.items():
        data = build()
        rows.append(measure(case, data, warm))
        print(json.dumps(rows[-1]), flush=True)
    results = {
        "started": started,
        "machine": f"{platform.machine()}, {platform.python_version()}, {platform.platform()}",
        "cases": rows,
    }
    lines = [
        f"# Decode budget per image ({started}, `make bench-decode`)",
        "",
        f"Machine: {results['machine']}. Fresh process per decode, {REPEATS} repeats.",
        "",
        "| image | file | outcome | seconds (median, range) | peak MB over baseline "
        "(median, range) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['bytes'] / 1e6:.1f} MB | {row['outcome']} | "
            f"{row['seconds_median']} ({row['seconds_range'][0]}-{row['seconds_range'][1]}) | "
            f"{row['peak_mb_median']} ({row['peak_mb_range'][0]}-{row['peak_mb_range'][1]}) |"
        )
    report.save(RESULTS, "decode-budget", results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
