"""GreedyBatcher: batches fill while the previous batch runs, up to max_batch_size."""

from __future__ import annotations

import asyncio

import pytest

from imgclf_serve.batcher import GreedyBatcher


class Recorder:
    def __init__(self, release: asyncio.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.release = release

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        if self.release is not None and len(self.batches) == 1:
            await self.release.wait()  # the first batch holds the "core"
        return [item * 10 for item in items]


def test_images_arriving_while_a_batch_runs_form_the_next_batch() -> None:
    async def main() -> tuple[list[int], list[list[int]]]:
        release = asyncio.Event()
        run = Recorder(release)
        batcher = GreedyBatcher(run, max_batch_size=4, wait_s=0)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0.01)  # batch [0] is running
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 7)]
        await asyncio.sleep(0.01)
        release.set()
        results = await asyncio.gather(first, *rest)
        await batcher.close()
        return results, run.batches

    results, batches = asyncio.run(main())
    assert results == [i * 10 for i in range(7)]  # each caller gets its own result
    assert batches == [[0], [1, 2, 3, 4], [5, 6]]  # greedy, capped at max_batch_size


def test_an_idle_core_waits_wait_s_for_company() -> None:
    async def main() -> list[list[int]]:
        run = Recorder()
        batcher = GreedyBatcher(run, max_batch_size=8, wait_s=0.05)
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(batcher.submit(2))
        await asyncio.gather(first, second)
        await batcher.close()
        return run.batches

    assert asyncio.run(main()) == [[1, 2]]


def test_a_failing_batch_fails_each_of_its_images_and_the_next_batch_runs() -> None:
    calls = 0

    async def flaky(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("device error")
        return items

    async def main() -> int:
        batcher = GreedyBatcher(flaky, max_batch_size=8, wait_s=0)
        with pytest.raises(RuntimeError, match="device error"):
            await batcher.submit(1)
        result = await batcher.submit(2)
        await batcher.close()
        return result

    assert asyncio.run(main()) == 2


def test_callers_that_gave_up_are_skipped_and_counted() -> None:
    skipped: list[int] = []

    async def main() -> list[list[int]]:
        release = asyncio.Event()
        run = Recorder(release)
        batcher = GreedyBatcher(run, max_batch_size=8, wait_s=0, on_skipped=skipped.append)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0.01)
        impatient = asyncio.create_task(asyncio.wait_for(batcher.submit(1), 0.01))
        patient = asyncio.create_task(batcher.submit(2))
        with pytest.raises(asyncio.TimeoutError):
            await impatient  # its deadline passes while batch [0] runs
        release.set()
        await asyncio.gather(first, patient)
        await batcher.close()
        return run.batches

    assert asyncio.run(main()) == [[0], [2]]
    assert skipped == [1]
