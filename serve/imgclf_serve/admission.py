"""Admission by work: a bound on the images and bytes in flight, not on the calls.

Ray Serve sheds by calls (`max_ongoing_requests`, `max_queued_requests`), so a ClassifyBatch of
256 images costs the same admission as a Classify of one. `WorkAdmission` counts what a call
brings: a call is admitted while the images and bytes already in flight plus its own stay
within the bounds, or when nothing is in flight (so a call at the per-call limits always gets
through on an idle server); otherwise it is refused at once, before anything is decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from imgclf_serve.errors import Overloaded


class WorkAdmission:
    def __init__(self, max_images: int, max_bytes: int | None = None, where: str = "server"):
        if max_images < 1 or (max_bytes is not None and max_bytes < 1):
            raise ValueError("admission bounds must be positive")
        self.max_images = max_images
        self.max_bytes = max_bytes
        self._where = where
        self.images = 0
        self.bytes = 0

    def try_admit(self, images: int, size: int = 0) -> bool:
        idle = self.images == 0
        fits = self.images + images <= self.max_images and (
            self.max_bytes is None or self.bytes + size <= self.max_bytes
        )
        if not (idle or fits):
            return False
        self.images += images
        self.bytes += size
        return True

    def release(self, images: int, size: int = 0) -> None:
        self.images -= images
        self.bytes -= size

    @contextmanager
    def admitted(self, images: int, size: int = 0) -> Iterator[None]:
        """Hold `images` and `size` bytes for the block; Overloaded if they do not fit."""
        if not self.try_admit(images, size):
            raise Overloaded(self.refusal(images, size))
        try:
            yield
        finally:
            self.release(images, size)

    def refusal(self, images: int, size: int = 0) -> str:
        if self.images + images > self.max_images or self.max_bytes is None:
            limit = f"{self.max_images} images in flight ({self.images} now, {images} in this call)"
        else:
            limit = f"{self.max_bytes} bytes of images in flight ({self.bytes} now, {size} here)"
        return f"the {self._where} is at its limit of {limit}; retry with backoff"
