"""AsyncClassifierClient: ClassifierClient's asyncio twin (grpc.aio), with the same surface."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgclf import _wire, batching
from imgclf._calls import CallSettings, check_chunk_size, check_top_k, new_request_id
from imgclf.errors import from_grpc_error
from imgclf.images import ImageInput
from imgclf.options import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TIMEOUT_S,
    TLS,
    USE_CLIENT_DEFAULT,
    ChannelSettings,
    Keepalive,
    RetryPolicy,
    Timeout,
    as_tls,
    default_target,
)
from imgclf.results import BatchItem, Classification, HealthStatus, ServerModels
from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc

Response = TypeVar("Response")
Item = TypeVar("Item")
_InFlight = tuple[batching.Chunk, "asyncio.Task[pb.ClassifyBatchResponse] | None"]


class AsyncClassifierClient:
    """The asyncio client; arguments and behaviour as `imgclf.ClassifierClient`.

    Create it inside a running event loop (gRPC binds the channel to it); `channel=` takes a
    `grpc.aio.Channel`. Use `async with` or `await client.close()`.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        tls: TLS | bool | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008  # frozen, so safe to share
        keepalive: Keepalive | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_images_per_call: int | None = None,
        concurrency: int = 4,
        application: str | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._calls = CallSettings.create(
            timeout=timeout,
            application=application,
            metadata=metadata,
            max_message_bytes=max_message_bytes,
            max_images_per_call=max_images_per_call,
            concurrency=concurrency,
        )
        settings = ChannelSettings(
            default_target(target), as_tls(tls), retry, keepalive, max_message_bytes
        )
        self._owns_channel = channel is None
        self._channel = channel if channel is not None else settings.aio_channel()
        self._stub = pb_grpc.ClassifierServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._max_images_per_call = max_images_per_call

    async def classify(
        self,
        image: ImageInput,
        *,
        top_k: int | None = None,
        model: str | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
    ) -> Classification:
        """Classify one image; see `ClassifierClient.classify`."""
        request = self._calls.classify_request(image, model, top_k)
        response = await self._call(self._stub.Classify, request, self._calls.timeout(timeout))
        return _wire.classification(response)

    async def classify_batch(
        self,
        images: Iterable[ImageInput],
        *,
        top_k: int | None = None,
        model: str | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
    ) -> list[BatchItem]:
        """Classify many images, one result per image in order; see
        `ClassifierClient.classify_batch`."""
        check_top_k(top_k)
        deadline = batching.Deadline(self._calls.timeout(timeout))
        prepared = list(self._calls.prepare(images))
        chunks = batching.even_chunks(
            prepared, await self._images_per_call(deadline), self._calls.max_message_bytes
        )
        sent = self._send_chunks(_aiter(chunks), model, top_k, deadline.remaining)
        return [item async for item in sent]

    async def classify_iter(
        self,
        images: Iterable[ImageInput] | AsyncIterable[ImageInput],
        *,
        chunk_size: int = 32,
        top_k: int | None = None,
        model: str | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
    ) -> AsyncIterator[BatchItem]:
        """Stream images through ClassifyBatch; see `ClassifierClient.classify_iter`."""
        check_top_k(top_k)
        check_chunk_size(chunk_size)
        timeout_s = self._calls.timeout(timeout)
        limit = await self._images_per_call(batching.Deadline(timeout_s))
        per_call = min(chunk_size, limit or chunk_size)
        chunks = _chunks(images, per_call, self._calls.max_message_bytes)
        async for item in self._send_chunks(chunks, model, top_k, lambda: timeout_s):
            yield item

    async def models(self, *, timeout: Timeout = USE_CLIENT_DEFAULT) -> ServerModels:
        """The deployed models, the default model and the server's per-call limits."""
        request = pb.ListModelsRequest()
        response = await self._call(self._stub.ListModels, request, self._calls.timeout(timeout))
        return _wire.server_models(response)

    async def health(
        self, *, service: str = "", timeout: Timeout = USE_CLIENT_DEFAULT
    ) -> HealthStatus:
        """grpc.health.v1 status; see `ClassifierClient.health`."""
        request = health_pb2.HealthCheckRequest(service=service)
        response = await self._call(self._health.Check, request, self._calls.timeout(timeout))
        return _wire.health_status(response)

    async def close(self) -> None:
        """Close the channel (unless it was passed in). Calls in flight are cancelled."""
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> AsyncClassifierClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # helpers

    async def _call(
        self, method: Callable[..., Awaitable[Response]], request: Any, timeout_s: float | None
    ) -> Response:
        request_id = new_request_id()
        try:
            return await method(
                request, timeout=timeout_s, metadata=self._calls.call_metadata(request_id)
            )
        except grpc.RpcError as exc:
            raise from_grpc_error(exc, request_id) from exc

    async def _images_per_call(self, deadline: batching.Deadline) -> int:
        """The server's limit on images per call, asked once; 0 means no limit."""
        if self._max_images_per_call is None:
            limits = (await self.models(timeout=deadline.remaining())).limits
            self._max_images_per_call = limits.max_images_per_batch
        return self._max_images_per_call

    async def _send_chunks(
        self,
        chunks: AsyncIterator[batching.Chunk],
        model: str | None,
        top_k: int | None,
        timeout_s: Callable[[], float | None],
    ) -> AsyncIterator[BatchItem]:
        in_flight: deque[_InFlight] = deque()
        try:
            async for chunk in chunks:
                if len(in_flight) >= self._calls.concurrency:
                    for item in await _finish(*in_flight.popleft()):
                        yield item
                in_flight.append(self._start(chunk, model, top_k, timeout_s()))
            while in_flight:
                for item in await _finish(*in_flight.popleft()):
                    yield item
        finally:
            for _, task in in_flight:
                if task is not None:
                    task.cancel()

    def _start(
        self, chunk: batching.Chunk, model: str | None, top_k: int | None, timeout: float | None
    ) -> _InFlight:
        if not batching.needs_call(chunk):
            return chunk, None
        request = batching.batch_request(chunk, model, top_k)
        call = self._call(self._stub.ClassifyBatch, request, timeout)
        return chunk, asyncio.ensure_future(call)


async def _finish(
    chunk: batching.Chunk, task: asyncio.Task[pb.ClassifyBatchResponse] | None
) -> list[BatchItem]:
    return batching.merge(chunk, await task if task is not None else None)


async def _chunks(
    images: Iterable[ImageInput] | AsyncIterable[ImageInput], per_call: int, max_bytes: int
) -> AsyncIterator[batching.Chunk]:
    """batching.stream_chunks for an iterable that may be asynchronous."""
    chunk: batching.Chunk = []
    index = 0
    async for image in _aiter(images):
        chunk.append(batching.prepare(index, image, max_bytes))
        index += 1
        if len(chunk) == per_call:
            for part in batching.within_bytes(chunk, max_bytes):
                yield part
            chunk = []
    for part in batching.within_bytes(chunk, max_bytes):
        yield part


async def _aiter(items: Iterable[Item] | AsyncIterable[Item]) -> AsyncIterator[Item]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
