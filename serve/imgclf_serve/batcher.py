"""Dynamic batching that fills a batch while the previous one runs.

Ray Serve 2.60's `@serve.batch` cuts a batch as soon as its wait timeout ends and only then
waits for a free slot (`max_concurrent_batches`), so under load each image waiting for the
busy core became its own batch of one (measured: 284 of 290 forward passes at 16 concurrent
calls; BENCHMARKS.md). Here one loop takes, when the core is free, every image that arrived
while it was busy (up to `max_batch_size`); `wait_s` is spent only when the core was idle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GreedyBatcher(Generic[Item, Result]):
    def __init__(
        self,
        run_batch: Callable[[list[Item]], Awaitable[list[Result]]],
        max_batch_size: int,
        wait_s: float,
        on_skipped: Callable[[int], None] = lambda count: None,
    ) -> None:
        self._run_batch = run_batch
        self._on_skipped = on_skipped
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]] | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Queue one item; returns its result once its batch ran (or raises its error)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._loop_task = asyncio.create_task(self._loop(self._queue))
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    def running(self) -> bool:
        """False once the batching loop has ended (it only ends if it crashed or closed)."""
        return self._loop_task is None or not self._loop_task.done()

    async def _loop(self, queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]]) -> None:
        while True:
            batch = [await queue.get()]
            if self.wait_s > 0 and queue.qsize() < self.max_batch_size - 1:
                await asyncio.sleep(self.wait_s)
            while len(batch) < self.max_batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            # A caller that gave up (its deadline passed, it was cancelled) costs no device time.
            live = [(item, future) for item, future in batch if not future.done()]
            if len(live) < len(batch):
                self._on_skipped(len(batch) - len(live))
            if live:
                await self._run(live)

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._run_batch([item for item, _ in batch])
        except Exception as exc:  # every image of the batch gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
