"""AsyncClassifierClient: the same surface and behaviour as the sync client, on grpc.aio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from imgclf import (
    AsyncClassifierClient,
    Classification,
    DeadlineExceeded,
    HealthStatus,
    InvalidImage,
    ItemError,
    ModelNotFound,
    RetryPolicy,
)
from tests.client.fake_server import FakeServer

FAST_RETRY = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.05)


def test_classify_models_and_health(fake: FakeServer) -> None:
    async def main() -> None:
        async with AsyncClassifierClient(fake.target) as client:
            result = await client.classify(b"tabby", top_k=1)
            assert result.top.label == "tabby" and result.model == "fake-model"
            assert (await client.models()).default_model == "fake-model"
            assert await client.health() is HealthStatus.SERVING

    asyncio.run(main())


def test_errors_retries_and_deadlines(fake: FakeServer) -> None:
    async def main() -> None:
        async with AsyncClassifierClient(fake.target, retry=FAST_RETRY) as client:
            with pytest.raises(InvalidImage) as bad:
                await client.classify(b"bad")
            assert bad.value.request_id == fake.servicer.calls[-1].metadata["request_id"]
            assert isinstance(bad.value.__cause__, grpc.aio.AioRpcError)
            with pytest.raises(ModelNotFound):
                await client.classify_batch([b"x"], model="missing")

            fake.servicer.fail_next = [grpc.StatusCode.UNAVAILABLE] * 2
            before = len(fake.servicer.calls_to("Classify"))
            assert (await client.classify(b"x")).ok
            assert len(fake.servicer.calls_to("Classify")) - before == 3

            fake.servicer.delay_s = 2.0
            with pytest.raises(DeadlineExceeded):
                await client.classify(b"x", timeout=0.1)

    asyncio.run(main())


def test_batches_split_concurrently_and_stay_in_order(fake: FakeServer) -> None:
    fake.servicer.max_images_per_batch = 4
    fake.servicer.gate = 3  # calls answered only once this many overlap

    async def main() -> list:  # type: ignore[type-arg]
        async with AsyncClassifierClient(fake.target) as client:
            return await client.classify_batch([f"a{i}".encode() for i in range(9)] + [b"bad"])

    results = asyncio.run(main())
    assert [r.top.label for r in results[:9] if isinstance(r, Classification)] == [
        f"a{i}" for i in range(9)
    ]
    assert isinstance(results[9], ItemError) and results[9].index == 9
    assert [call.images for call in fake.servicer.calls_to("ClassifyBatch")] == [4, 3, 3]
    assert fake.servicer.max_in_flight == fake.servicer.gate


def test_classify_iter_takes_an_async_generator(fake: FakeServer) -> None:
    fake.servicer.gate = 2

    async def images() -> AsyncIterator[bytes]:
        for i in range(10):
            await asyncio.sleep(0)
            yield f"g{i}".encode()

    async def main() -> list[str]:
        async with AsyncClassifierClient(fake.target, concurrency=2) as client:
            stream = client.classify_iter(images(), chunk_size=3)
            return [r.top.label async for r in stream if isinstance(r, Classification)]

    assert asyncio.run(main()) == [f"g{i}" for i in range(10)]
    assert [call.images for call in fake.servicer.calls_to("ClassifyBatch")] == [3, 3, 3, 1]
    assert fake.servicer.max_in_flight == 2
