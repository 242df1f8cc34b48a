"""The ceiling: decode + preprocess + forward + top-k in one Python process, with the same
number of torch threads the server's replicas get in total. No network, no queues."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from imgclf_serve.backends import BackendName, ModelSource, load_backend
from imgclf_serve.models import get_spec, imagenet_labels
from imgclf_serve.postprocess import top_k
from imgclf_serve.preprocess import ImageLimits, load_image

MODEL = "efficientnet-lite0"


@dataclass(frozen=True)
class InProcessResult:
    batch_size: int
    threads: int
    images: int
    seconds: float
    images_per_s: float
    ms_per_batch: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def pipeline(images: Sequence[bytes], threads: int) -> Callable[[int], None]:
    """Load the model on this thread; returns a function that runs decode + preprocess +
    forward + top-k on `batch_size` of `images` (cycled)."""
    spec = get_spec(MODEL)
    labels = imagenet_labels()
    backend = load_backend(BackendName.CPU, spec, ModelSource(), cpu_threads=threads)
    backend.init_thread()
    limits = ImageLimits()

    def one_batch(batch_size: int) -> None:
        batch = [images[i % len(images)] for i in range(batch_size)]
        pixels = np.stack([load_image(image, spec.preprocess, limits) for image in batch])
        for probabilities in backend.predict(pixels):
            top_k(probabilities, 5, labels)

    return one_batch


def measure(
    images: Sequence[bytes], batch_size: int, threads: int, duration_s: float
) -> InProcessResult:
    one_batch = pipeline(images, threads)
    for _ in range(3):  # warm-up
        one_batch(batch_size)
    done = 0
    began = time.perf_counter()
    while time.perf_counter() - began < duration_s:
        one_batch(batch_size)
        done += batch_size
    seconds = time.perf_counter() - began
    return InProcessResult(
        batch_size=batch_size,
        threads=torch.get_num_threads(),
        images=done,
        seconds=round(seconds, 3),
        images_per_s=round(done / seconds, 2),
        ms_per_batch=round(seconds / (done / batch_size) * 1000, 2),
    )
