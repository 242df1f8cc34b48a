"""The model deployment: one replica per core. Loads the model once, warms it up, then
decodes images on a thread pool and merges them into batches for the core.

Lifecycle: __init__ (pick backend, load, warm up) -> reconfigure(user_config) ->
classify_share per call (a Classify is a share of one) -> _forward_batch per batch; Serve
calls check_health every health_check_period_s and replaces a replica that fails it three
times in a row.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from PIL import Image
from ray import serve

from imgclf_serve.admission import WorkAdmission
from imgclf_serve.backends import ModelSource, load_backend, resolve_backend
from imgclf_serve.batcher import GreedyBatcher
from imgclf_serve.devices import DeviceKind, assigned_device
from imgclf_serve.errors import ClassifyError, Overloaded
from imgclf_serve.metrics import ReplicaMetrics
from imgclf_serve.models.custom import check_outputs
from imgclf_serve.postprocess import top_k
from imgclf_serve.preprocess import DecodeCancelled, ImageLimits, check_header, load_image
from imgclf_serve.results import ImagePayload, ItemError, ItemResult, ReplicaInfo, ServedBy
from imgclf_serve.settings import BackendChoice, ModelConfig, ReplicaUserConfig

logger = logging.getLogger("ray.serve")

# Pillow releases the GIL while decoding, so decoding overlaps the forward pass.
DECODE_THREADS = 2
# Until the first reconfigure() applies the deployment's user_config.
INITIAL_USER_CONFIG = ReplicaUserConfig()
# A canary slower than this fails the health check: the core is hung, not busy (the canary
# waits for at most the one batch that is running).
CANARY_TIMEOUT_S = 20.0
# What a backend that needs no pixels gets for each image.
_NO_PIXELS = np.zeros(0, dtype=np.float32)


@serve.deployment
class ModelReplica:
    def __init__(
        self,
        model: ModelConfig,
        device_kind: DeviceKind,
        limits: ImageLimits,
        max_images: int,
    ) -> None:
        started = time.perf_counter()
        self._spec = model.spec()
        self._version = model.version
        self._limits = limits
        self._admission = WorkAdmission(max_images, where="model replica")
        self._labels = self._spec.labels()
        device = assigned_device(device_kind)
        auto = model.backend is BackendChoice.AUTO
        requested = self._spec.default_backend if auto else model.backend.value
        backend_name = resolve_backend(requested, device)
        self._backend = load_backend(
            backend_name,
            self._spec,
            ModelSource(weights=model.weights, artifact=model.artifact),
            cpu_threads=model.cpu_threads(),
        )
        self._served_by = ServedBy(
            replica_id=serve.get_replica_context().replica_id.unique_id,
            device_kind=device.kind,
            core_ids=device.core_ids,
            backend=backend_name.value,
            node_id=ray.get_runtime_context().get_node_id(),
        )
        self._core_label = device.core_label()
        self._metrics = ReplicaMetrics(model.name, device.kind.value, self._core_label)
        self._metrics.loaded(time.perf_counter() - started)
        # Backends that need no pixels (the null backend) get only the header checked.
        self._pixels_of = self._decoded if self._backend.decodes else self._header_checked
        self._forward_pool = ThreadPoolExecutor(
            1, thread_name_prefix="forward", initializer=self._backend.init_thread
        )
        self._decode_pool = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="decode")
        self._warm_batch_sizes: set[int] = set()
        self._user_config = INITIAL_USER_CONFIG
        self._decode_slots = _decode_slots(INITIAL_USER_CONFIG)
        self._batcher: GreedyBatcher[_Queued, np.ndarray] = GreedyBatcher(
            self._forward_batch,
            INITIAL_USER_CONFIG.max_batch_size,
            INITIAL_USER_CONFIG.batch_wait_timeout_s,
            on_skipped=self._metrics.skipped,
        )
        self._canary = self._decode_pool.submit(self._decode, _sample_image()).result()[0][None]
        outputs = self._run_canaries(1)  # the batch-1 warm-up, checked against the labels
        check_outputs(model.name, outputs.shape[-1], len(self._labels))
        logger.info(
            "model %s ready on %s, backend %s, in %.1f s",
            model.name,
            device.describe(),
            backend_name.value,
            time.perf_counter() - started,
        )

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply batching settings; a config-file deploy changes them without a restart."""
        config = ReplicaUserConfig.model_validate(user_config)
        self._warm_up(config.max_batch_size)
        self._batcher.max_batch_size = config.max_batch_size
        self._batcher.wait_s = config.batch_wait_timeout_s
        if config.max_batch_size != self._user_config.max_batch_size:
            self._decode_slots = _decode_slots(config)
        self._user_config = config
        logger.info("user_config: %s", config)

    async def check_health(self) -> None:
        """Serve's health check: the batching loop runs and the core still computes a
        sensible answer for a known image (one batch-1 forward pass)."""
        if not self._batcher.running():
            raise RuntimeError("the batching loop stopped")
        loop = asyncio.get_running_loop()
        probabilities = await asyncio.wait_for(
            loop.run_in_executor(self._forward_pool, self._canary_forward), CANARY_TIMEOUT_S
        )
        total = float(probabilities.sum())
        if not math.isfinite(total) or abs(total - 1.0) > 1e-2:
            raise RuntimeError(f"canary inference returned probabilities summing to {total}")

    def _canary_forward(self) -> np.ndarray:
        if self._core_label in self._user_config.inject_faults.fail_health_check_on_cores:
            raise RuntimeError(f"injected fault: canary inference on core {self._core_label}")
        probabilities: np.ndarray = self._backend.predict(self._canary)
        return probabilities

    async def classify_share(
        self, images: list[ImagePayload], top_k: int, slot: int | None
    ) -> list[ItemResult]:
        """A share of a ClassifyBatch call, in order: encoded images, or arrays the caller
        preprocessed (the Open Inference Protocol's PIXELS input, checked by the ingress for
        this model's shape). `slot` is read by the request router
        (routing.py) to send each share of a call to a different replica. Over the replica's
        bound on images (admission.py) every image of the share fails RESOURCE_EXHAUSTED
        before any is decoded."""
        if not self._admission.try_admit(len(images)):
            error = ItemError.from_exception(Overloaded(self._admission.refusal(len(images))))
            return [self._failed(error)] * len(images)
        self._crash_if_injected(images)
        return list(await asyncio.gather(*(self._admitted(image, top_k) for image in images)))

    async def _admitted(self, image: ImagePayload, k: int) -> ItemResult:
        """One admitted image; it leaves the replica's count as soon as it is answered."""
        try:
            return await self._classify_one(image, k)
        finally:
            self._admission.release(1)

    async def describe(self) -> ReplicaInfo:
        """What this replica serves (ListModels); answering at all means the model is loaded
        and warm."""
        return ReplicaInfo(
            model=self._spec.name,
            input_size=self._spec.input_size,
            num_classes=self._spec.num_classes,
            max_batch_size=self._user_config.max_batch_size,
            served_by=self._served_by,
            version=self._version,
        )

    async def _classify_one(self, image: ImagePayload, k: int) -> ItemResult:
        loop = asyncio.get_running_loop()
        arrived = time.perf_counter()
        cancelled = threading.Event()
        try:
            # Only the images the next two batches need are decoded (and held) at a time.
            async with self._decode_slots:
                pixels, decode_seconds = await loop.run_in_executor(
                    self._decode_pool, self._decode, image, cancelled.is_set
                )
                self._metrics.stage("decode", decode_seconds)
                # Queue time covers waiting for a decode slot, a thread and a batch.
                queued = _Queued(pixels, arrived + decode_seconds)
                probabilities = await self._batcher.submit(queued)
        except asyncio.CancelledError:
            cancelled.set()  # a decode still running stops at its next read
            raise
        except ClassifyError as exc:
            return self._failed(ItemError.from_exception(exc))
        except Exception:
            logger.exception("classifying an image failed")
            return self._failed(
                ItemError.from_exception(ClassifyError("the model failed on this image"))
            )
        started = time.perf_counter()
        predictions = top_k(probabilities, k, self._labels)
        self._metrics.stage("postprocess", time.perf_counter() - started)
        return ItemResult(predictions, self._served_by)

    def _decode(
        self, image: ImagePayload, cancelled: Callable[[], bool] = lambda: False
    ) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        if cancelled():
            raise DecodeCancelled
        if isinstance(image, np.ndarray):  # preprocessed by the caller
            pixels = image if self._backend.decodes else _NO_PIXELS
        else:
            pixels = self._pixels_of(image, cancelled)
        return pixels, time.perf_counter() - started

    def _decoded(self, image: bytes, cancelled: Callable[[], bool]) -> np.ndarray:
        return load_image(image, self._spec.preprocess, self._limits, cancelled)

    def _header_checked(self, image: bytes, cancelled: Callable[[], bool]) -> np.ndarray:
        check_header(image, self._limits)
        return _NO_PIXELS

    def _crash_if_injected(self, images: list[ImagePayload]) -> None:
        poison = self._user_config.inject_faults.crash_on_image_sha256
        if poison and any(_sha256(image) in poison for image in images):
            logger.error("injected fault: exiting on an image listed in crash_on_image_sha256")
            os._exit(1)

    def _failed(self, error: ItemError) -> ItemResult:
        return ItemResult(served_by=self._served_by, error=error)

    async def _forward_batch(self, queued: list[_Queued]) -> list[np.ndarray]:
        started = time.perf_counter()
        faults = self._user_config.inject_faults
        if self._core_label in faults.slow_forward_on_cores:
            await asyncio.sleep(faults.slow_forward_s)
        for item in queued:
            self._metrics.stage("queue", started - item.since)
        batch = np.stack([item.pixels for item in queued])
        loop = asyncio.get_running_loop()
        probabilities = await loop.run_in_executor(self._forward_pool, self._backend.predict, batch)
        elapsed = time.perf_counter() - started
        self._metrics.forward(len(queued), self._user_config.max_batch_size, elapsed)
        return list(probabilities)

    def _warm_up(self, batch_size: int) -> None:
        """Run a batch of `batch_size` through the model once, so the first requests do not
        pay for lazy initialisation. Serve reports the replica ready only after __init__ and
        the first reconfigure, so both happen before traffic."""
        if batch_size not in self._warm_batch_sizes:
            self._run_canaries(batch_size)

    def _run_canaries(self, batch_size: int) -> np.ndarray:
        """A batch of `batch_size` canary images through the model, counted as a warm-up;
        returns its probabilities."""
        started = time.perf_counter()
        batch = np.repeat(self._canary, batch_size, axis=0)
        probabilities: np.ndarray = self._forward_pool.submit(self._backend.predict, batch).result()
        self._warm_batch_sizes.add(batch_size)
        self._metrics.warmed_up(time.perf_counter() - started)
        return probabilities


def _decode_slots(config: ReplicaUserConfig) -> asyncio.Semaphore:
    """Images decoded or in a batch at once: one batch on the core and the next filling."""
    return asyncio.Semaphore(2 * config.max_batch_size)


@dataclass(frozen=True)
class _Queued:
    """A preprocessed image waiting for a batch; `since` is when it would have started
    waiting had decoding taken no wait (arrival + decode time)."""

    pixels: np.ndarray
    since: float


def _sample_image() -> bytes:
    sample = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 64, 32)).save(sample, format="JPEG")
    return sample.getvalue()


def _sha256(image: ImagePayload) -> str:
    return hashlib.sha256(image.tobytes() if isinstance(image, np.ndarray) else image).hexdigest()
