"""The request path behind every protocol, without Ray's deployment class or protos: name the
model, check the per-call limits, admit the work, spread the images over the model's replicas
(spread.py, shares.py) and return one result per image in order. ingress.py translates protos
to these calls and their results or ClassifyError back; tests/unit/test_classifier.py drives
it with fake deployment handles.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imgclf_serve.admission import WorkAdmission
from imgclf_serve.errors import InvalidArgument, ModelNotFound, quoted
from imgclf_serve.failures import as_classify_error
from imgclf_serve.postprocess import DEFAULT_TOP_K
from imgclf_serve.preprocess import check_size
from imgclf_serve.results import ImagePayload, ItemResult
from imgclf_serve.routing import SlotCounter
from imgclf_serve.settings import AdmissionConfig, HedgingConfig, LimitsConfig
from imgclf_serve.shares import ShareSender
from imgclf_serve.spread import payload_bytes, raise_if_all_shed, reassemble, split
from imgclf_serve.straggler import StragglerPolicy

# An image as the replicas take it: encoded bytes, or an array the caller preprocessed.
Images = list[ImagePayload]


@dataclass(frozen=True)
class ServedModel:
    """What the ingress knows of a model without asking its replicas."""

    replicas: int
    num_classes: int
    input_size: int
    min_ready_replicas: int = 1
    version: str = "1"


class Classifier:
    """`handles`: a Ray DeploymentHandle per model (anything with `classify_share.remote`);
    `on_share_event(model, event)` counts hedged shares, replica deaths and images failed
    alone (metrics)."""

    def __init__(
        self,
        handles: Mapping[str, Any],
        models: Mapping[str, ServedModel],
        default_model: str,
        limits: LimitsConfig,
        admission: AdmissionConfig,
        on_share_event: Callable[[str, str], None] = lambda model, event: None,
        live_replicas: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        self.models = dict(models)
        self._live_replicas = live_replicas
        self.default_model = default_model
        self.limits = limits
        self._image_limits = limits.image_limits()
        self._admission = WorkAdmission(
            admission.ingress_max_images, admission.ingress_max_bytes, where="ingress"
        )
        self._slots = SlotCounter()
        # Per model: their share times differ (a ResNet50 share is not late by Lite0's median).
        self._stragglers = {name: StragglerPolicy(HedgingConfig()) for name in handles}
        self._senders = {
            name: ShareSender(
                handle,
                self.models[name].replicas,
                self._stragglers[name],
                functools.partial(on_share_event, name),
            )
            for name, handle in handles.items()
        }

    def replicas_of(self, name: str) -> int:
        """The model's replicas as Serve last reported them RUNNING when more than deployed
        (an autoscaled model above its minimum), else as deployed: a count read a moment
        before the last replicas came up never cuts a batch into fewer shares."""
        return max(self._live_replicas().get(name, 0), self.models[name].replicas)

    def set_hedging(self, config: HedgingConfig) -> None:
        for straggler in self._stragglers.values():
            straggler.config = config

    def model_named(self, model: str) -> str:
        """The deployed model `model` names ("" is the default); ModelNotFound otherwise."""
        name = model or self.default_model
        if name not in self.models:
            deployed = ", ".join(sorted(self.models))
            raise ModelNotFound(
                f"model {quoted(name)} is not deployed; deployed models: {deployed}"
            )
        return name

    def resolve(self, model: str, top_k: int) -> tuple[str, int]:
        """The model and the number of predictions (0 means DEFAULT_TOP_K)."""
        name = self.model_named(model)
        num_classes = self.models[name].num_classes
        k = top_k or DEFAULT_TOP_K
        if not 1 <= k <= num_classes:
            raise InvalidArgument(
                f"top_k must be in [1, {num_classes}] (0 means {DEFAULT_TOP_K}); got {top_k}"
            )
        return name, k

    async def classify(self, name: str, image: bytes, k: int) -> ItemResult:
        """One image, routed by load (a replica merges concurrent ones into batches); its
        failure raises."""
        check_size(image, self._image_limits)
        with self._admission.admitted(1, len(image)):
            [result] = await self._senders[name].send([image], k, slot=None)
        if result.error is not None:
            raise result.error.to_exception()
        return result

    async def classify_images(self, name: str, images: Images, k: int) -> list[ItemResult]:
        """Many images of one call, spread over the replicas; one result per image, in order.
        Raises for the call as a whole: over the per-call limits, not admitted, or every image
        shed."""
        self._check_batch_size(len(images))
        size = payload_bytes(images)
        self.check_request_bytes(size)
        with self._admission.admitted(len(images), size):
            results = await self._spread(name, images, k)
        raise_if_all_shed(results)
        return results

    def check_request_bytes(self, total: int) -> None:
        limit = self.limits.max_request_bytes
        if total > limit:
            raise InvalidArgument(
                f"{total} bytes of images in one call, over the limit of {limit} bytes "
                "(max_request_bytes); split the batch"
            )

    def _check_batch_size(self, count: int) -> None:
        if count == 0:
            raise InvalidArgument("ClassifyBatch needs at least one image; got none")
        limit = self.limits.max_images_per_batch
        if count > limit:
            raise InvalidArgument(
                f"{count} images in one call, over the limit of {limit}; split the batch"
            )

    async def _spread(self, name: str, images: Images, k: int) -> list[ItemResult]:
        sender = self._senders[name]
        sender.replicas = self.replicas_of(name)
        parts = split(images, sender.replicas, self._refuse)
        shares = parts.share_images(images)
        if len(shares) == 1 and len(shares[0]) == 1:
            # One image: routed by load and merged into batches, as Classify.
            replies: Sequence[list[ItemResult] | BaseException] = [
                await sender.send(shares[0], k, slot=None)
            ]
        else:
            first_slot = self._slots.reserve(len(shares))
            replies = await asyncio.gather(
                *(sender.send(share, k, slot=first_slot + n) for n, share in enumerate(shares)),
                return_exceptions=True,
            )
        return reassemble(parts, replies, lambda exc: as_classify_error(exc, "a share"))

    def _refuse(self, image: ImagePayload) -> None:
        if isinstance(image, bytes):
            check_size(image, self._image_limits)
