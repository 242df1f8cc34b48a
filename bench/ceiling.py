"""The in-process ceiling: N one-thread processes (the CPU slots a server's N replicas get),
each doing decode + preprocess + forward + top-k back to back. No network, no queues.

    with Ceiling(processes=2) as ceiling:
        images_per_s, ms_per_batch = ceiling.run(batch_size=4, seconds=5)
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

_state: dict[str, Any] = {}


def _init(images: Sequence[bytes]) -> None:
    from bench.inprocess import pipeline

    _state["one_batch"] = pipeline(images, threads=1)
    _state["one_batch"](4)  # warm-up


def _run(batch_size: int, seconds: float) -> tuple[int, float]:
    """Images done and seconds taken, batch after batch, for about `seconds`."""
    done = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        _state["one_batch"](batch_size)
        done += batch_size
    return done, time.perf_counter() - began


class Ceiling:
    def __init__(self, processes: int, images: Sequence[bytes]) -> None:
        self.processes = processes
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(processes, initializer=_init, initargs=(list(images),))
        self._pool.starmap(_run, [(1, 0.1)] * processes)  # every process has loaded the model

    def run(
        self, batch_size: int, seconds: float, processes: int | None = None
    ) -> tuple[float, float]:
        """Images/s summed over `processes` (default: all) running at once, and the mean ms
        per batch in one process."""
        used = processes or self.processes
        results = self._pool.starmap(_run, [(batch_size, seconds)] * used)
        images_per_s = sum(done / took for done, took in results)
        ms_per_batch = 1000 * sum(took / (done / batch_size) for done, took in results) / used
        return round(images_per_s, 2), round(ms_per_batch, 2)

    def pids(self) -> list[int]:
        return [process.pid for process in self._pool._pool if process.pid is not None]  # type: ignore[attr-defined]

    def __enter__(self) -> Ceiling:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._pool.terminate()
        self._pool.join()
