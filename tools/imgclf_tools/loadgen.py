"""One load generator for every system under test: `concurrency` workers call an async
function in a loop for a bounded time (and at most `max_calls` calls) and time each call.

Each call returns how many images it carried, so images/s compares Classify, ClassifyBatch,
the prototype's endpoints and Triton alike. Latency percentiles are per call.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

Call = Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class LoadResult:
    system: str
    scenario: str
    concurrency: int
    images_per_call: int
    calls: int
    errors: int
    seconds: float
    images_per_s: float
    calls_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        """One progress line for the console."""
        return (
            f"  {self.system:>16} {self.scenario:<26} {self.images_per_s:7.1f} img/s"
            f"  p50 {self.p50_ms:8.1f} ms  p99 {self.p99_ms:8.1f} ms"
        )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list; nan when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def run_load(
    system: str,
    scenario: str,
    call: Call,
    *,
    concurrency: int,
    images_per_call: int,
    duration_s: float,
    warmup_s: float = 1.0,
    max_calls: int = 100_000,
) -> LoadResult:
    """Warm up for `warmup_s` (not recorded), then record for `duration_s`."""
    latencies: list[float] = []
    images = errors = 0
    recording = False
    started_calls = 0

    async def worker(stop_at: float) -> None:
        nonlocal images, errors, started_calls
        while time.monotonic() < stop_at and started_calls < max_calls:
            started_calls += 1
            began = time.perf_counter()
            try:
                carried = await call()
            except Exception:
                if recording:
                    errors += 1
                continue
            if recording:
                latencies.append(time.perf_counter() - began)
                images += carried

    if warmup_s > 0:
        await asyncio.gather(*(worker(time.monotonic() + warmup_s) for _ in range(concurrency)))
    recording, started_calls = True, 0
    began = time.monotonic()
    await asyncio.gather(*(worker(began + duration_s) for _ in range(concurrency)))
    seconds = time.monotonic() - began
    tallies = (latencies, images, errors, seconds)
    return result(system, scenario, concurrency, images_per_call, *tallies)


async def run_open_loop(
    system: str,
    scenario: str,
    call: Call,
    *,
    rate_per_s: float,
    images_per_call: int,
    duration_s: float,
    max_in_flight: int = 2000,
) -> LoadResult:
    """Start calls at a fixed rate (evenly spaced arrivals), whatever the server's pace, for
    `duration_s`; latency includes any wait the server imposes. Arrivals that would exceed
    `max_in_flight` outstanding calls are counted as errors, not sent."""
    latencies: list[float] = []
    images = errors = 0
    in_flight: set[asyncio.Task[None]] = set()

    async def one() -> None:
        nonlocal images, errors
        began = time.perf_counter()
        try:
            carried = await call()
        except Exception:
            errors += 1
            return
        latencies.append(time.perf_counter() - began)
        images += carried

    interval = 1.0 / rate_per_s
    began = time.monotonic()
    arrivals = int(rate_per_s * duration_s)
    for n in range(arrivals):
        delay = began + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= max_in_flight:
            errors += 1
            continue
        task = asyncio.ensure_future(one())
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight)
    seconds = time.monotonic() - began
    return result(system, scenario, 0, images_per_call, latencies, images, errors, seconds)


def result(
    system: str,
    scenario: str,
    concurrency: int,
    images_per_call: int,
    latencies: list[float],
    images: int,
    errors: int,
    seconds: float,
) -> LoadResult:
    """A LoadResult from the raw tallies of one load; concurrency 0 means open loop."""
    ordered = sorted(latencies)
    return LoadResult(
        system=system,
        scenario=scenario,
        concurrency=concurrency,
        images_per_call=images_per_call,
        calls=len(ordered),
        errors=errors,
        seconds=round(seconds, 3),
        images_per_s=round(images / seconds, 2),
        calls_per_s=round(len(ordered) / seconds, 2),
        p50_ms=round(percentile(ordered, 50) * 1000, 2),
        p90_ms=round(percentile(ordered, 90) * 1000, 2),
        p99_ms=round(percentile(ordered, 99) * 1000, 2),
    )
