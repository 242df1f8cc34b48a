"""ClassifierClient: the blocking client. AsyncClassifierClient (aio.py) is its asyncio twin."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
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
_InFlight = tuple[batching.Chunk, "grpc.Future[Any] | None", str]


class ClassifierClient:
    """A client for an imgclf server (imgclf.v1.ClassifierService over gRPC).

    Args:
        target: "host:port", or any gRPC target such as "dns:///imgclf.ml.svc:9000"; a name
            with several addresses is load-balanced round-robin over all of them. None
            means $IMGCLF_TARGET, or 127.0.0.1:9000.
        tls: TLS settings, True for TLS with gRPC's bundled roots, or None for plaintext.
        timeout: default deadline of each call in seconds; None waits forever.
        retry: gRPC retry policy for UNAVAILABLE and RESOURCE_EXHAUSTED; None turns it off.
        keepalive: HTTP/2 keepalive pings; None (default) sends none.
        max_message_bytes: largest request or response; batches are split to fit.
        max_images_per_call: images per ClassifyBatch call; None asks the server once.
        concurrency: ClassifyBatch calls a split batch keeps in flight at once.
        application: Ray Serve application name, sent as "application" metadata (needed only
            when the cluster runs several Serve applications).
        metadata: extra (key, value) metadata sent with every call.
        channel: an existing channel to use instead of creating one (tests, custom setups);
            the client does not close it.
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
        channel: grpc.Channel | None = None,
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
        self._channel = channel if channel is not None else settings.sync_channel()
        self._stub = pb_grpc.ClassifierServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._max_images_per_call = max_images_per_call

    def classify(
        self,
        image: ImageInput,
        *,
        top_k: int | None = None,
        model: str | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
    ) -> Classification:
        """Classify one image (bytes, a path, a binary file or a PIL image).

        Returns the top-k predictions (k defaults to the server's, 5); `model` None means the
        server's default model. Raises an `imgclf.errors.ImgclfError` subclass on failure,
        e.g. InvalidImage for bytes the server can't decode.
        """
        request = self._calls.classify_request(image, model, top_k)
        response = self._call(self._stub.Classify, request, self._calls.timeout(timeout))
        return _wire.classification(response)

    def classify_batch(
        self,
        images: Iterable[ImageInput],
        *,
        top_k: int | None = None,
        model: str | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
    ) -> list[BatchItem]:
        """Classify many images: one result per image, in order.

        Each result is a `Classification` or, for an image that failed alone (undecodable,
        unreadable file), an `ItemError`; check `item.ok`. Batches over the server's per-call
        limit are split into concurrent calls; `timeout` bounds the whole batch. A failure
        of a whole call (unknown model, server unreachable) raises.
        """
        check_top_k(top_k)
        deadline = batching.Deadline(self._calls.timeout(timeout))
        prepared = list(self._calls.prepare(images))
        chunks = batching.even_chunks(
            prepared, self._images_per_call(deadline), self._calls.max_message_bytes
        )
        return list(self._send_chunks(chunks, model, top_k, deadline.remaining))

    def classify_iter(
        self,
        images: Iterable[ImageInput],
        *,
        chunk_size: int = 32,
        top_k: int | None = None,
        model: str | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
    ) -> Iterator[BatchItem]:
        """Stream any number of images through ClassifyBatch, `chunk_size` per call, keeping
        `concurrency` calls in flight; yields one result per image, in order, as they come.

        Images are read lazily, so a generator of paths over a large folder is fine.
        `timeout` applies to each call.
        """
        check_top_k(top_k)
        check_chunk_size(chunk_size)
        timeout_s = self._calls.timeout(timeout)
        limit = self._images_per_call(batching.Deadline(timeout_s))
        per_call = min(chunk_size, limit or chunk_size)
        max_bytes = self._calls.max_message_bytes
        chunks = batching.stream_chunks(self._calls.prepare(images), per_call, max_bytes)
        yield from self._send_chunks(chunks, model, top_k, lambda: timeout_s)

    def models(self, *, timeout: Timeout = USE_CLIENT_DEFAULT) -> ServerModels:
        """The deployed models, the default model and the server's per-call limits."""
        request = pb.ListModelsRequest()
        response = self._call(self._stub.ListModels, request, self._calls.timeout(timeout))
        return _wire.server_models(response)

    def health(self, *, service: str = "", timeout: Timeout = USE_CLIENT_DEFAULT) -> HealthStatus:
        """grpc.health.v1 status: SERVING while every model (or the model named by `service`)
        has its warm replicas.

        Raises Unavailable when the server can't be reached, NotFound for an unknown service.
        """
        request = health_pb2.HealthCheckRequest(service=service)
        response = self._call(self._health.Check, request, self._calls.timeout(timeout))
        return _wire.health_status(response)

    def close(self) -> None:
        """Close the channel (unless it was passed in). Calls in flight are cancelled."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> ClassifierClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # helpers

    def _call(
        self, method: Callable[..., Response], request: Any, timeout_s: float | None
    ) -> Response:
        request_id = new_request_id()
        try:
            return method(
                request, timeout=timeout_s, metadata=self._calls.call_metadata(request_id)
            )
        except grpc.RpcError as exc:
            raise from_grpc_error(exc, request_id) from exc

    def _images_per_call(self, deadline: batching.Deadline) -> int:
        """The server's limit on images per call, asked once; 0 means no limit."""
        if self._max_images_per_call is None:
            limits = self.models(timeout=deadline.remaining()).limits
            self._max_images_per_call = limits.max_images_per_batch
        return self._max_images_per_call

    def _send_chunks(
        self,
        chunks: Iterable[batching.Chunk],
        model: str | None,
        top_k: int | None,
        timeout_s: Callable[[], float | None],
    ) -> Iterator[BatchItem]:
        in_flight: deque[_InFlight] = deque()
        try:
            for chunk in chunks:
                if len(in_flight) >= self._calls.concurrency:
                    yield from self._finish(*in_flight.popleft())
                in_flight.append(self._start(chunk, model, top_k, timeout_s()))
            while in_flight:
                yield from self._finish(*in_flight.popleft())
        finally:
            for _, future, _ in in_flight:
                if future is not None:
                    future.cancel()

    def _start(
        self, chunk: batching.Chunk, model: str | None, top_k: int | None, timeout: float | None
    ) -> _InFlight:
        request_id = new_request_id()
        if not batching.needs_call(chunk):
            return chunk, None, request_id
        future = self._stub.ClassifyBatch.future(
            batching.batch_request(chunk, model, top_k),
            timeout=timeout,
            metadata=self._calls.call_metadata(request_id),
        )
        return chunk, future, request_id

    def _finish(
        self, chunk: batching.Chunk, future: grpc.Future[Any] | None, request_id: str
    ) -> list[BatchItem]:
        if future is None:
            return batching.merge(chunk, None)
        try:
            response = future.result()
        except grpc.RpcError as exc:
            raise from_grpc_error(exc, request_id) from exc
        return batching.merge(chunk, response)
