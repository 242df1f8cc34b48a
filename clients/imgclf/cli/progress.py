"""A one-line progress display on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import time
from typing import TextIO

_REDRAW_EVERY_S = 0.1


class Progress:
    """Counts images and failures; `rate()` is images per second since the start."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self.done = 0
        self.failed = 0

    def update(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        now = time.monotonic()
        if self._enabled and now - self._drawn_at >= _REDRAW_EVERY_S:
            self._drawn_at = now
            self._stream.write(f"\r{self.done} images  {self.rate():.1f} img/s  ")
            self._stream.write(f"{self.failed} failed ")
            self._stream.flush()

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def rate(self) -> float:
        return self.done / max(self.elapsed(), 1e-9)

    def clear(self) -> None:
        if self._enabled and self._drawn_at:
            self._stream.write("\r\033[K")
            self._stream.flush()
