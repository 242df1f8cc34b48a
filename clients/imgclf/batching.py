"""Split many images into ClassifyBatch calls within the server's limits, and put the
answers back in the caller's order. No I/O here: the sync and asyncio clients send."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import grpc

from imgclf import _wire
from imgclf.images import ImageInput, describe, image_bytes
from imgclf.results import BatchItem, ItemError
from imgclf.v1 import classifier_service_pb2 as pb

# Bytes a ClassifyBatchRequest spends besides the images: model name, top_k, framing.
_REQUEST_OVERHEAD = 1024
_PER_IMAGE_OVERHEAD = 16


@dataclass(frozen=True)
class Prepared:
    """One caller image: its bytes, ready to send, or why it can't be sent."""

    index: int
    data: bytes | None = None
    error: ItemError | None = None

    @property
    def cost(self) -> int:
        return len(self.data or b"") + _PER_IMAGE_OVERHEAD


def prepare(index: int, image: ImageInput, max_message_bytes: int) -> Prepared:
    """Read one image; an unreadable file or an image too big to send fails only itself."""
    try:
        data = image_bytes(image)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Prepared(index, error=local_error(index, "UNREADABLE_FILE", f"{reason}"))
    if len(data) + _PER_IMAGE_OVERHEAD + _REQUEST_OVERHEAD > max_message_bytes:
        return Prepared(index, error=too_large(index, len(data), max_message_bytes, image))
    return Prepared(index, data)


def local_error(index: int, reason: str, detail: str) -> ItemError:
    return ItemError(index, grpc.StatusCode.INVALID_ARGUMENT, reason, f"image {index}: {detail}")


def too_large(index: int, size: int, max_message_bytes: int, image: ImageInput) -> ItemError:
    return local_error(
        index,
        "IMAGE_TOO_LARGE",
        f"{describe(image)} is {size} bytes, more than one call may carry "
        f"(max_message_bytes={max_message_bytes})",
    )


Chunk = list[Prepared]


def even_chunks(items: list[Prepared], max_images: int, max_message_bytes: int) -> list[Chunk]:
    """As few calls as the limits allow, of near-equal size (300 at a limit of 256: 150+150)."""
    calls = math.ceil(len(items) / max_images) if max_images > 0 else 1
    size, extra = divmod(len(items), max(calls, 1))
    chunks: list[Chunk] = []
    start = 0
    for n in range(calls):
        end = start + size + (1 if n < extra else 0)
        chunks.extend(within_bytes(items[start:end], max_message_bytes))
        start = end
    return [chunk for chunk in chunks if chunk]


def stream_chunks(
    items: Iterable[Prepared], chunk_size: int, max_message_bytes: int
) -> Iterator[Chunk]:
    """Consecutive chunks of up to `chunk_size` images, read lazily from `items`."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        yield from within_bytes(chunk, max_message_bytes)


def within_bytes(chunk: Chunk, max_message_bytes: int) -> Iterator[Chunk]:
    part: Chunk = []
    used = _REQUEST_OVERHEAD
    for item in chunk:
        if part and used + item.cost > max_message_bytes:
            yield part
            part, used = [], _REQUEST_OVERHEAD
        part.append(item)
        used += item.cost
    if part:
        yield part


def batch_request(chunk: Chunk, model: str | None, top_k: int | None) -> pb.ClassifyBatchRequest:
    return pb.ClassifyBatchRequest(
        images=[item.data for item in chunk if item.data is not None],
        model=model or "",
        top_k=top_k or 0,
    )


def needs_call(chunk: Chunk) -> bool:
    return any(item.data is not None for item in chunk)


def merge(chunk: Chunk, response: pb.ClassifyBatchResponse | None) -> list[BatchItem]:
    """The chunk's results in order: local failures in place, the server's items between."""
    answers = iter(response.items if response is not None else ())
    model = response.model if response is not None else ""
    merged: list[BatchItem] = []
    for item in chunk:
        if item.error is not None:
            merged.append(item.error)
        else:
            merged.append(_wire.batch_item(model, item.index, next(answers)))
    return merged


class Deadline:
    """One deadline for an operation made of several calls; None means no deadline."""

    def __init__(self, timeout_s: float | None) -> None:
        self._end = None if timeout_s is None else time.monotonic() + timeout_s

    def remaining(self) -> float | None:
        if self._end is None:
            return None
        return max(self._end - time.monotonic(), 0.001)
