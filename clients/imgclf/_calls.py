"""What every call carries, shared by the sync and asyncio clients: request ids, metadata,
deadlines and argument checks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from imgclf import _wire, batching
from imgclf.errors import REQUEST_ID_METADATA_KEY, InvalidImage
from imgclf.images import ImageInput, image_bytes
from imgclf.options import Timeout, check_metadata, resolve_timeout
from imgclf.v1 import classifier_service_pb2 as pb

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CallSettings:
    """Per-client defaults for each call."""

    timeout_s: float | None
    application: str | None
    metadata: Metadata
    max_message_bytes: int
    max_images_per_call: int | None
    concurrency: int

    @classmethod
    def create(
        cls,
        *,
        timeout: float | None,
        application: str | None,
        metadata: Sequence[tuple[str, str]],
        max_message_bytes: int,
        max_images_per_call: int | None,
        concurrency: int,
    ) -> CallSettings:
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive or None; got {timeout}")
        if max_images_per_call is not None and max_images_per_call < 1:
            raise ValueError(f"max_images_per_call must be >= 1; got {max_images_per_call}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1; got {concurrency}")
        return cls(
            timeout,
            application,
            check_metadata(metadata),
            max_message_bytes,
            max_images_per_call,
            concurrency,
        )

    def timeout(self, timeout: Timeout) -> float | None:
        return resolve_timeout(timeout, self.timeout_s)

    def call_metadata(self, request_id: str) -> Metadata:
        """The caller's metadata plus the request id and, when set, Ray Serve's application."""
        routing = (("application", self.application),) if self.application else ()
        return ((REQUEST_ID_METADATA_KEY, request_id), *routing, *self.metadata)

    def classify_request(
        self, image: ImageInput, model: str | None, top_k: int | None
    ) -> pb.ClassifyRequest:
        check_top_k(top_k)
        data = image_bytes(image)
        # Checked here: gRPC would refuse it with RESOURCE_EXHAUSTED, which reads as overload.
        if len(data) + 1024 > self.max_message_bytes:
            raise InvalidImage(
                f"the image is {len(data)} bytes, more than one call may carry "
                f"(max_message_bytes={self.max_message_bytes})",
                reason="IMAGE_TOO_LARGE",
            )
        return _wire.classify_request(data, model, top_k)

    def prepare(self, images: Iterable[ImageInput]) -> Iterator[batching.Prepared]:
        """Each image read (lazily) and numbered; see batching.prepare."""
        for index, image in enumerate(images):
            yield batching.prepare(index, image, self.max_message_bytes)


def new_request_id() -> str:
    return uuid.uuid4().hex


def check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 (or None for the server's default); got {top_k}")


def check_chunk_size(chunk_size: int) -> None:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
