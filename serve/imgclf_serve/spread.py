"""Cutting a call's images into per-replica shares and putting the answers back in order:
pure functions, no Ray, no protos.

An image refused before it is sent (empty, over the size limit) gets its error at once and
goes in no share; the others are cut into at most one share per replica (routing.py sends
each to a distinct replica). A share that failed as a whole gives each of its images that
failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from imgclf_serve.errors import ClassifyError, Code, Overloaded
from imgclf_serve.results import ImagePayload, ItemError, ItemResult
from imgclf_serve.routing import split_evenly

Image = TypeVar("Image")


@dataclass(frozen=True)
class Split(Generic[Image]):
    """A call's images: the ones answered before sending (by index), and the shares to send,
    each a list of indices into the call's images."""

    count: int
    answered: dict[int, ItemResult]
    shares: list[list[int]]

    def share_images(self, images: Sequence[Image]) -> list[list[Image]]:
        return [[images[i] for i in share] for share in self.shares]


def split(images: Sequence[Image], replicas: int, refuse: Callable[[Image], None]) -> Split[Image]:
    """`refuse(image)` raises ClassifyError for an image that must not be sent."""
    answered: dict[int, ItemResult] = {}
    sendable = []
    for index, image in enumerate(images):
        try:
            refuse(image)
            sendable.append(index)
        except ClassifyError as exc:
            answered[index] = ItemResult(error=ItemError.from_exception(exc))
    shares = [[sendable[i] for i in part] for part in split_evenly(len(sendable), replicas)]
    return Split(len(images), answered, shares)


def reassemble(
    split: Split[Image],
    replies: Sequence[list[ItemResult] | BaseException],
    as_error: Callable[[BaseException], ClassifyError],
) -> list[ItemResult]:
    """One result per image, in request order, from each share's reply (or its failure)."""
    results = dict(split.answered)
    for share, reply in zip(split.shares, replies, strict=True):
        if isinstance(reply, BaseException):
            failed = ItemResult(error=ItemError.from_exception(as_error(reply)))
            results.update(dict.fromkeys(share, failed))
        else:
            results.update(zip(share, reply, strict=True))
    return [results[index] for index in range(split.count)]


def raise_if_all_shed(results: Sequence[ItemResult]) -> None:
    """A call whose every image a replica refused for load fails as a whole, with
    RESOURCE_EXHAUSTED, so clients back off and retry it (they do not retry single items)."""
    errors = [result.error for result in results]
    if errors and all(e is not None and e.code is Code.RESOURCE_EXHAUSTED for e in errors):
        first = errors[0]
        assert first is not None
        raise Overloaded(first.message)


def payload_bytes(images: Sequence[ImagePayload]) -> int:
    """Bytes a call's images carry: encoded files, or preprocessed arrays."""
    return sum(len(image) if isinstance(image, bytes) else image.nbytes for image in images)


def item_codes(results: Sequence[ItemResult]) -> list[str]:
    """Each image's status code name, for the metrics: "OK" or its error's code."""
    return [result.error.code.name if result.error else "OK" for result in results]
