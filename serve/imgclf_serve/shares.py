"""Sending a share of a call's images to a model replica, and what happens when that fails.

- **Straggler**: a ClassifyBatch share still unanswered after the StragglerPolicy's delay is
  sent to the next replica too; the first answer wins and the other request is cancelled.
- **Replica died** under a share (RayActorError: its process exited, its node was lost): the
  death may be unrelated to these images, or one of them may have caused it. Each image is
  sent once more, alone, to a live replica, and no two of them are in flight on one replica
  (distinct slots, in waves of one per live replica): a replica merges concurrent requests
  into one forward pass, so an image that crashes it would take a good image sent beside it
  along. An image whose replica dies again fails alone with INTERNAL, which clients do not
  retry, so an image that crashes replicas costs at most two of them per call instead of
  (ingress retries x client attempts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from ray.exceptions import RayActorError
from ray.serve.exceptions import ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from imgclf_serve.errors import ClassifyError, Code
from imgclf_serve.results import ImagePayload, ItemError, ItemResult
from imgclf_serve.straggler import StragglerPolicy

logger = logging.getLogger("ray.serve")

REPLICA_DIED = (RayActorError, ReplicaUnavailableError)
CRASHED_ALONE = ItemError.from_exception(
    ClassifyError(
        "the model replica classifying this image stopped, and so did another that tried it "
        "alone; the image is not retried (the server log has the details)"
    )
)


class ShareSender:
    """Sends shares of one model's calls; `on_event` counts hedged shares, deaths and images
    that failed alone (metrics)."""

    def __init__(
        self,
        handle: DeploymentHandle[Any],
        replicas: int,
        straggler: StragglerPolicy,
        on_event: Callable[[str], None] = lambda event: None,
    ) -> None:
        self._handle = handle
        # Live replicas of the model (changes with autoscaling); the classifier updates it.
        self.replicas = replicas
        self._straggler = straggler
        self._on_event = on_event

    async def send(self, images: list[ImagePayload], k: int, slot: int | None) -> list[ItemResult]:
        """Results for `images` (encoded, or preprocessed arrays), in order. `slot` None: one
        Classify, routed by load."""
        try:
            return await self._hedged(images, k, slot)
        except REPLICA_DIED:
            logger.warning("a model replica stopped during a share of %d images", len(images))
            self._on_event("replica_died")
        return await self._each_alone(images, k, slot)

    async def _each_alone(
        self, images: list[ImagePayload], k: int, slot: int | None
    ) -> list[ItemResult]:
        """Each image once more, alone; one per live replica at a time. The dead replica's
        slot is skipped: slots after it map to the replicas that were alive beside it."""
        if slot is None:  # a Classify: its one image, routed by load
            return [await self._alone(image, k, None) for image in images]
        width = max(1, self.replicas - 1)
        results: list[ItemResult] = []
        for start in range(0, len(images), width):
            wave = images[start : start + width]
            results += await asyncio.gather(
                *(self._alone(image, k, slot + 1 + n) for n, image in enumerate(wave))
            )
        return results

    async def _alone(self, image: ImagePayload, k: int, slot: int | None) -> ItemResult:
        try:
            results: list[ItemResult] = await self._handle.classify_share.remote(
                [image], k, slot=slot
            )
        except REPLICA_DIED:
            logger.error("a model replica stopped again on an image sent alone; failing it")
            self._on_event("failed_alone")
            return ItemResult(error=CRASHED_ALONE)
        return results[0]

    async def _hedged(
        self, images: list[ImagePayload], k: int, slot: int | None
    ) -> list[ItemResult]:
        first = self._handle.classify_share.remote(images, k, slot=slot)
        if slot is None:  # a Classify: routed by load, neither timed nor hedged
            results: list[ItemResult] = await first
            return results
        started = time.monotonic()
        delay = self._straggler.hedge_after() if self.replicas > 1 else None
        if delay is None:
            results = await first
            self._straggler.finished(time.monotonic() - started, hedged=False)
            return results
        attempts = [_Attempt(cast(DeploymentResponse[Any], first))]
        try:
            done, _ = await asyncio.wait({attempts[0].task}, timeout=delay)
            if not done:
                self._on_event("hedged")
                second = self._handle.classify_share.remote(images, k, slot=slot + 1)
                attempts.append(_Attempt(cast(DeploymentResponse[Any], second)))
            results = await _first_answer(attempts)
        finally:
            for attempt in attempts:
                attempt.cancel()
        self._straggler.finished(time.monotonic() - started, hedged=len(attempts) > 1)
        return results


class _Attempt:
    def __init__(self, response: DeploymentResponse[Any]) -> None:
        self.response = response
        self.task: asyncio.Future[Any] = asyncio.ensure_future(response)

    def cancel(self) -> None:
        if not self.task.done():
            self.task.cancel()
            self.response.cancel()


async def _first_answer(attempts: list[_Attempt]) -> list[ItemResult]:
    """The first attempt that answers with something better than "overloaded" for every
    image; if none does, the last answer, or the first error when all failed."""
    pending = {attempt.task for attempt in attempts}
    answer: list[ItemResult] | None = None
    error: BaseException | None = None
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                error = error or task.exception()
                continue
            answer = task.result()
            if not _all_overloaded(answer):
                return answer
    if answer is not None:
        return answer
    assert error is not None
    raise error


def _all_overloaded(results: list[ItemResult]) -> bool:
    return all(
        result.error is not None and result.error.code is Code.RESOURCE_EXHAUSTED
        for result in results
    )
