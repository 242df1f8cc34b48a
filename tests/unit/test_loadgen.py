"""The load generator and CPU accounting (imgclf_tools) the benchmarks and tests drive load with."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import statistics
import time

from imgclf_tools import cpu
from imgclf_tools.loadgen import percentile, run_load, run_open_loop


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert math.isnan(percentile([], 50))


def test_run_load_counts_calls_images_and_errors() -> None:
    calls = 0

    async def call() -> int:
        nonlocal calls
        calls += 1
        mine = calls
        await asyncio.sleep(0)
        if mine % 10 == 0:
            raise RuntimeError("every tenth call fails")
        return 4

    result = asyncio.run(
        run_load("fake", "4 per call", call, concurrency=3, images_per_call=4,
                 duration_s=5, warmup_s=0, max_calls=100)
    )  # fmt: skip
    assert result.calls + result.errors == 100  # bounded by max_calls, not by time
    assert result.errors == 10
    assert calls == 100
    assert result.p50_ms <= result.p90_ms <= result.p99_ms


def test_open_loop_starts_calls_at_the_offered_rate_whatever_the_server_pace() -> None:
    started: list[float] = []

    async def slow_call() -> int:
        started.append(time.monotonic())
        await asyncio.sleep(0.3)  # slower than the arrival interval: calls overlap
        return 2

    result = asyncio.run(
        run_open_loop("fake", "open", slow_call, rate_per_s=50, images_per_call=2, duration_s=1)
    )
    assert result.calls == 50 and result.errors == 0
    assert abs(result.images_per_s - 100 / result.seconds) < 0.5
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert statistics.median(gaps) < 0.05, "arrivals did not wait for answers"
    assert result.p50_ms >= 300


def test_cpu_sample_counts_this_process_by_role() -> None:
    before = cpu.sample([os.getpid()], {os.getpid(): "load generator"})
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    used = cpu.sample([os.getpid()], {os.getpid(): "load generator"}) - before
    assert used.by_role["load generator"] >= 0.15
    assert used.processes == {"load generator": 1}
    assert cpu.role_of(os.getpid()) == "other"
