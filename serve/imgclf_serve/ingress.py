"""The gRPC edge: imgclf.v1.ClassifierService, inference.GRPCInferenceService (the Open
Inference Protocol) and grpc.health.v1.Health methods, on one port.

Protos in, protos out (wire.py and oip.py translate); validation and status codes here, no
model code. Every failure
becomes a status code and a short message (never a traceback) in `_answer`, which also
records each call's metrics.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy as np
from grpc_health.v1 import health_pb2
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
)
from ray.serve.grpc_util import RayServegRPCContext
from ray.serve.handle import DeploymentHandle

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf_serve import metrics, oip, wire
from imgclf_serve.admission import WorkAdmission
from imgclf_serve.devices import DeviceKind
from imgclf_serve.errors import (
    ClassifyError,
    Code,
    InvalidArgument,
    ModelNotFound,
    Overloaded,
    ReplicaUnavailable,
    quoted,
)
from imgclf_serve.inference import grpc_service_pb2 as oip_pb
from imgclf_serve.postprocess import DEFAULT_TOP_K
from imgclf_serve.preprocess import check_size
from imgclf_serve.results import ItemError, ItemResult, ReplicaInfo
from imgclf_serve.routing import SlotCounter, split_evenly
from imgclf_serve.settings import AdmissionConfig, IngressUserConfig, LimitsConfig
from imgclf_serve.shares import ShareSender
from imgclf_serve.straggler import StragglerPolicy

logger = logging.getLogger("ray.serve")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ClassifierService"].full_name
PACKAGE_VERSION = importlib.metadata.version("imgclf")
OIP_RPCS = frozenset(oip_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods_by_name)
# The longest the health service waits (for Serve's controller, or a replica's description);
# the readiness probes' timeouts exceed it (k8s/).
HEALTH_PING_TIMEOUT_S = 2.0
# Checks within this reuse the controller's last answer (probes of many pods, Watch streams).
REPLICA_STATES_MAX_AGE_S = 1.0
HEALTH_WATCH_PERIOD_S = 2.0

Response = TypeVar("Response")
OIP_INSTANCE_KIND = {
    DeviceKind.CPU: oip_pb.ModelInstanceGroup.KIND_CPU,
    DeviceKind.GPU: oip_pb.ModelInstanceGroup.KIND_GPU,
    DeviceKind.NEURON_CORE: oip_pb.ModelInstanceGroup.KIND_MODEL,
}


@dataclass(frozen=True)
class ServedModel:
    """What the ingress knows of a model without asking its replicas."""

    replicas: int
    num_classes: int
    input_size: int
    min_ready_replicas: int = 1


@serve.deployment
class ClassifierIngress:
    def __init__(
        self,
        handles: dict[str, DeploymentHandle],
        models: dict[str, ServedModel],
        default_model: str,
        limits: LimitsConfig,
        admission: AdmissionConfig,
    ) -> None:
        self._handles = handles
        self._models = models
        self._default_model = default_model
        self._limits = limits
        self._image_limits = limits.image_limits()
        self._admission = WorkAdmission(
            admission.ingress_max_images, admission.ingress_max_bytes, where="ingress"
        )
        self._slots = SlotCounter()
        self._metrics = metrics.IngressMetrics()
        # Per model: their share times differ (a ResNet50 share is not late by Lite0's median).
        self._stragglers = {name: StragglerPolicy(IngressUserConfig().hedging) for name in handles}
        self._senders = {
            name: ShareSender(
                handle,
                models[name].replicas,
                self._stragglers[name],
                lambda event, name=name: self._metrics.share_event(name, event),
            )
            for name, handle in handles.items()
        }
        # RUNNING replicas per deployment, as Serve's controller last reported them.
        self._running: dict[str, int] = {}
        self._states_read_at = -math.inf
        self._last_described: dict[str, ReplicaInfo] = {}

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply the ingress's user_config (straggler hedging) in place."""
        config = IngressUserConfig.model_validate(user_config)
        for straggler in self._stragglers.values():
            straggler.config = config.hedging
        logger.info("ingress user_config: %s", config)

    # imgclf.v1.ClassifierService

    async def Classify(
        self, request: pb.ClassifyRequest, grpc_context: RayServegRPCContext
    ) -> pb.ClassifyResponse:
        work = self._classify(request)
        empty = pb.ClassifyResponse()
        return await self._answer("Classify", request.model, 1, grpc_context, work, empty)

    async def ClassifyBatch(
        self, request: pb.ClassifyBatchRequest, grpc_context: RayServegRPCContext
    ) -> pb.ClassifyBatchResponse:
        work = self._classify_batch(request)
        empty = pb.ClassifyBatchResponse()
        images = len(request.images)
        return await self._answer("ClassifyBatch", request.model, images, grpc_context, work, empty)

    async def ListModels(
        self, request: pb.ListModelsRequest, grpc_context: RayServegRPCContext
    ) -> pb.ListModelsResponse:
        work, empty = self._list_models(), pb.ListModelsResponse()
        return await self._answer("ListModels", None, 0, grpc_context, work, empty)

    # inference.GRPCInferenceService (the Open Inference Protocol; oip.py)

    async def ServerLive(
        self, request: oip_pb.ServerLiveRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.ServerLiveResponse:
        return oip_pb.ServerLiveResponse(live=True)  # answering is being live

    async def ServerReady(
        self, request: oip_pb.ServerReadyRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.ServerReadyResponse:
        status = await self._serving_status(list(self._models))
        return oip_pb.ServerReadyResponse(ready=status == health_pb2.HealthCheckResponse.SERVING)

    async def ModelReady(
        self, request: oip_pb.ModelReadyRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.ModelReadyResponse:
        work, empty = self._model_ready(request.name, request.version), oip_pb.ModelReadyResponse()
        return await self._answer("ModelReady", request.name, 0, grpc_context, work, empty)

    async def ServerMetadata(
        self, request: oip_pb.ServerMetadataRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.ServerMetadataResponse:
        return oip.server_metadata(PACKAGE_VERSION)

    async def ModelMetadata(
        self, request: oip_pb.ModelMetadataRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.ModelMetadataResponse:
        work, empty = self._model_metadata(request), oip_pb.ModelMetadataResponse()
        return await self._answer("ModelMetadata", request.name, 0, grpc_context, work, empty)

    async def ModelConfig(
        self, request: oip_pb.ModelConfigRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.ModelConfigResponse:
        work, empty = self._model_config(request), oip_pb.ModelConfigResponse()
        return await self._answer("ModelConfig", request.name, 0, grpc_context, work, empty)

    async def RepositoryIndex(
        self, request: oip_pb.RepositoryIndexRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.RepositoryIndexResponse:
        work, empty = self._repository_index(request.ready), oip_pb.RepositoryIndexResponse()
        return await self._answer("RepositoryIndex", None, 0, grpc_context, work, empty)

    async def ModelInfer(
        self, request: oip_pb.ModelInferRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.ModelInferResponse:
        work, empty = self._model_infer(request), oip_pb.ModelInferResponse()
        return await self._answer(
            "ModelInfer",
            request.model_name,
            self._claimed_images(request),
            grpc_context,
            work,
            empty,
        )

    async def _model_infer(self, request: oip_pb.ModelInferRequest) -> oip_pb.ModelInferResponse:
        name = self._versioned(request.model_name, request.model_version)
        call = oip.infer_call(request, self._facts(name), self._limits.max_images_per_batch)
        self._check_request_bytes(call.nbytes)
        with self._admission.admitted(len(call.images), call.nbytes):
            results = await self._classify_spread(name, call.images, call.k)
        _raise_if_all_shed(results)
        failure = oip.first_failure(results, request.inputs[0].name)
        if failure is not None:
            raise failure
        return oip.infer_response(request, call, name, results)

    async def _model_ready(self, model: str, version: str) -> oip_pb.ModelReadyResponse:
        name = self._versioned(model, version)
        status = await self._serving_status([name])
        return oip_pb.ModelReadyResponse(ready=status == health_pb2.HealthCheckResponse.SERVING)

    async def _model_metadata(
        self, request: oip_pb.ModelMetadataRequest
    ) -> oip_pb.ModelMetadataResponse:
        return oip.model_metadata(self._facts(self._versioned(request.name, request.version)))

    async def _model_config(self, request: oip_pb.ModelConfigRequest) -> oip_pb.ModelConfigResponse:
        name = self._versioned(request.name, request.version)
        info = await self._describe_or_last(name)
        config = oip.model_config(
            self._facts(name),
            max_batch_size=self._limits.max_images_per_batch,
            replicas=self._models[name].replicas,
            instance_kind=OIP_INSTANCE_KIND[info.served_by.device_kind],
            backend=info.served_by.backend,
            forward_batch_size=info.max_batch_size,
        )
        return oip_pb.ModelConfigResponse(config=config)

    async def _repository_index(self, ready_only: bool) -> oip_pb.RepositoryIndexResponse:
        index = oip_pb.RepositoryIndexResponse()
        for name in sorted(self._models):
            ready = await self._serving_status([name]) == health_pb2.HealthCheckResponse.SERVING
            if ready or not ready_only:
                index.models.add(
                    name=name,
                    version=oip.MODEL_VERSION,
                    state="READY" if ready else "UNAVAILABLE",
                    reason="" if ready else "fewer warm replicas than min_ready_replicas",
                )
        return index

    def _claimed_images(self, request: oip_pb.ModelInferRequest) -> int:
        """Images a ModelInfer call counts in the metrics: its first input's first dimension,
        bounded by the per-call limit (a malformed call may claim any number)."""
        shape = request.inputs[0].shape if request.inputs else []
        return min(max(shape[0], 0), self._limits.max_images_per_batch) if shape else 0

    def _versioned(self, model: str, version: str) -> str:
        name = self._model_named(model)
        oip.check_version(name, version)
        return name

    def _facts(self, name: str) -> oip.ModelFacts:
        served = self._models[name]
        return oip.ModelFacts(name, served.input_size, served.num_classes)

    # implementations

    async def _classify(self, request: pb.ClassifyRequest) -> pb.ClassifyResponse:
        name, k = self._resolve(request.model, request.top_k)
        check_size(request.image, self._image_limits)
        with self._admission.admitted(1, len(request.image)):
            [result] = await self._senders[name].send([request.image], k, slot=None)
        if result.error is not None:
            raise result.error.to_exception()
        return wire.classify_response(name, result)

    async def _classify_batch(self, request: pb.ClassifyBatchRequest) -> pb.ClassifyBatchResponse:
        name, k = self._resolve(request.model, request.top_k)
        images = list(request.images)
        self._check_batch_size(len(images))
        size = sum(len(image) for image in images)
        self._check_request_bytes(size)
        with self._admission.admitted(len(images), size):
            results = await self._classify_spread(name, images, k)
        _raise_if_all_shed(results)
        items = [wire.batch_item(index, result) for index, result in enumerate(results)]
        return pb.ClassifyBatchResponse(model=name, items=items)

    async def _list_models(self) -> pb.ListModelsResponse:
        infos = await asyncio.gather(*(self._describe_or_last(name) for name in self._models))
        return pb.ListModelsResponse(
            models=[wire.model_info(info, self._models[info.model].replicas) for info in infos],
            default_model=self._default_model,
            limits=pb.Limits(
                max_images_per_batch=self._limits.max_images_per_batch,
                max_image_bytes=self._limits.max_image_bytes,
                max_image_pixels=self._limits.max_image_pixels,
                max_request_bytes=self._limits.max_request_bytes,
            ),
        )

    async def _answer(
        self,
        rpc: str,
        model: str | None,
        images: int,
        grpc_context: RayServegRPCContext,
        work: Awaitable[Response],
        empty: Response,
    ) -> Response:
        """Run an RPC's work with what every RPC needs: one status code and message for any
        failure (never a traceback), and the call's metrics."""
        started = time.perf_counter()
        self._metrics.started(rpc)
        code = metrics.CANCELLED  # unless the work ends: the caller gave up (deadline, cancel)
        image_codes: list[str] = []
        try:
            response = await work
            code = metrics.OK
            if isinstance(response, pb.ClassifyBatchResponse):
                image_codes = [wire.item_code(item) for item in response.items]
        except Exception as exc:
            error = _as_classify_error(exc, rpc)
            _set_status(grpc_context, error)
            response = empty
            code = error.code.name
        finally:
            image_codes = image_codes or [code] * images
            elapsed = time.perf_counter() - started
            self._metrics.finished(
                rpc, _protocol(rpc), self._model_label(model), code, image_codes, elapsed
            )
        return response

    def _model_label(self, model: str | None) -> str:
        """The model a call named, for metrics; names not deployed share one label."""
        if model is None:
            return ""
        name = model or self._default_model
        return name if name in self._models else metrics.UNKNOWN_MODEL

    async def check_health(self) -> None:
        """Ray Serve's periodic health check of this ingress replica. It never fails the
        ingress over its models (their replicas have their own check); it refreshes the warm
        replica counts the health service answers from if Serve's controller is unreachable."""
        await self._running_replicas()

    # grpc.health.v1.Health: "" or the API's service name is the whole server; a model's name
    # is that model.

    async def Check(
        self, request: health_pb2.HealthCheckRequest, grpc_context: RayServegRPCContext
    ) -> health_pb2.HealthCheckResponse:
        models = self._health_scope(request.service)
        if models is None:
            grpc_context.set_code(grpc.StatusCode.NOT_FOUND)
            grpc_context.set_details(
                f"unknown service {quoted(request.service)}; ask for {SERVICE_NAME!r}, "
                f"'' or a model: {', '.join(sorted(self._models))}"
            )
            return health_pb2.HealthCheckResponse()
        return health_pb2.HealthCheckResponse(status=await self._serving_status(models))

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, grpc_context: RayServegRPCContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        models = self._health_scope(request.service)
        if models is None:
            yield health_pb2.HealthCheckResponse(
                status=health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            )
            return
        last = None
        while True:
            status = await self._serving_status(models)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            await asyncio.sleep(HEALTH_WATCH_PERIOD_S)

    # helpers

    def _model_named(self, model: str) -> str:
        name = model or self._default_model
        if name not in self._models:
            deployed = ", ".join(sorted(self._models))
            raise ModelNotFound(
                f"model {quoted(name)} is not deployed; deployed models: {deployed}"
            )
        return name

    def _resolve(self, model: str, top_k: int) -> tuple[str, int]:
        name = self._model_named(model)
        served = self._models[name]
        k = top_k or DEFAULT_TOP_K
        if not 1 <= k <= served.num_classes:
            raise InvalidArgument(
                f"top_k must be in [1, {served.num_classes}] (0 means {DEFAULT_TOP_K}); got {top_k}"
            )
        return name, k

    def _check_batch_size(self, count: int) -> None:
        if count == 0:
            raise InvalidArgument("ClassifyBatch needs at least one image; got none")
        limit = self._limits.max_images_per_batch
        if count > limit:
            raise InvalidArgument(
                f"{count} images in one call, over the limit of {limit}; split the batch"
            )

    def _check_request_bytes(self, total: int) -> None:
        limit = self._limits.max_request_bytes
        if total > limit:
            raise InvalidArgument(
                f"{total} bytes of images in one call, over the limit of {limit} bytes "
                "(max_request_bytes); split the batch"
            )

    async def _classify_spread(
        self, name: str, images: list[bytes] | list[np.ndarray], k: int
    ) -> list[ItemResult]:
        """Send equal shares of the images to distinct replicas; results in request order."""
        results: list[ItemResult | None] = [None] * len(images)
        sendable = []
        for index, image in enumerate(images):
            try:
                if isinstance(image, bytes):
                    check_size(image, self._image_limits)
                sendable.append(index)
            except ClassifyError as exc:
                results[index] = ItemResult(error=ItemError.from_exception(exc))
        shares = [
            [sendable[i] for i in part]
            for part in split_evenly(len(sendable), self._models[name].replicas)
        ]
        sender = self._senders[name]
        if len(sendable) == 1:  # one image: routed by load and merged into batches, as Classify
            [index] = sendable
            [results[index]] = await sender.send([images[index]], k, slot=None)
            return [result for result in results if result is not None]
        first_slot = self._slots.reserve(len(shares))
        replies = await asyncio.gather(
            *(
                sender.send([images[i] for i in share], k, slot=first_slot + n)
                for n, share in enumerate(shares)
            ),
            return_exceptions=True,
        )
        for share, reply in zip(shares, replies, strict=True):
            if isinstance(reply, BaseException):
                error = ItemError.from_exception(_as_classify_error(reply, "ClassifyBatch share"))
                share_results: list[ItemResult] = [ItemResult(error=error)] * len(share)
            else:
                share_results = reply
            for index, result in zip(share, share_results, strict=True):
                results[index] = result
        return [result for result in results if result is not None]

    async def _describe(self, name: str) -> ReplicaInfo:
        info: ReplicaInfo = await asyncio.wait_for(
            self._handles[name].describe.remote(), HEALTH_PING_TIMEOUT_S
        )
        self._last_described[name] = info
        return info

    async def _describe_or_last(self, name: str) -> ReplicaInfo:
        """What a replica of `name` says; while every replica is too busy to answer (a full
        queue or the ping timeout), what one said last. Replicas that are hung rather than
        busy fail Serve's own health check (ModelReplica.check_health) and are replaced."""
        try:
            return await self._describe(name)
        except (asyncio.TimeoutError, TimeoutError, BackPressureError):
            last = self._last_described.get(name)
            if last is None:
                raise
            return last

    def _health_scope(self, service: str) -> list[str] | None:
        if service in ("", SERVICE_NAME):
            return list(self._models)
        return [service] if service in self._models else None

    async def _running_replicas(self) -> dict[str, int]:
        """Replicas per deployment that Serve's controller reports RUNNING: a replica is
        RUNNING only once its constructor and reconfigure() returned, and both warm its model
        up. Busy replicas count (load does not take a pod out of its Service); replicas failing
        Serve's health check (a hung core) stop counting when Serve replaces them. Read at most
        every REPLICA_STATES_MAX_AGE_S; if the controller cannot be asked, the last counts
        stand: serving does not need it."""
        now = time.monotonic()
        if now - self._states_read_at > REPLICA_STATES_MAX_AGE_S:
            self._states_read_at = now
            try:
                status = await asyncio.wait_for(
                    asyncio.to_thread(serve.status), HEALTH_PING_TIMEOUT_S
                )
                app = status.applications[serve.get_replica_context().app_name]
                self._running = {
                    deployment: _running(overview.replica_states)
                    for deployment, overview in app.deployments.items()
                }
            except Exception as exc:
                logger.warning("health: Serve's controller did not answer (%s)", type(exc).__name__)
        return self._running

    async def _serving_status(self, models: list[str]) -> int:
        """SERVING while each of `models` has at least its `min_ready_replicas` warm."""
        running = await self._running_replicas()
        short = [
            f"{name} {running.get(name, 0)}/{self._models[name].min_ready_replicas}"
            for name in models
            if running.get(name, 0) < self._models[name].min_ready_replicas
        ]
        if short:
            logger.info("health check: not serving (warm replicas: %s)", ", ".join(short))
            return health_pb2.HealthCheckResponse.NOT_SERVING
        return health_pb2.HealthCheckResponse.SERVING


def _protocol(rpc: str) -> str:
    return metrics.OPEN_INFERENCE if rpc in OIP_RPCS else metrics.IMGCLF_V1


def _running(replica_states: dict[Any, int]) -> int:
    return sum(
        n for state, n in replica_states.items() if str(getattr(state, "value", state)) == "RUNNING"
    )


def _raise_if_all_shed(results: list[ItemResult]) -> None:
    """A call whose every image a replica refused for load fails as a whole, with
    RESOURCE_EXHAUSTED, so clients back off and retry it (they do not retry single items)."""
    errors = [result.error for result in results]
    if errors and all(e is not None and e.code is Code.RESOURCE_EXHAUSTED for e in errors):
        first = errors[0]
        assert first is not None
        raise Overloaded(first.message)


def _as_classify_error(exc: BaseException, where: str) -> ClassifyError:
    """Map any exception to a ClassifyError whose message is safe to show a client."""
    if isinstance(exc, ClassifyError):
        return exc
    if isinstance(exc, BackPressureError):
        return Overloaded("the server is overloaded; retry with backoff")
    if isinstance(exc, (RayActorError, DeploymentUnavailableError, ReplicaUnavailableError)):
        return ReplicaUnavailable("a model replica is unavailable; retry")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ReplicaUnavailable("a model replica did not answer in time; retry")
    logger.error("%s failed", where, exc_info=exc)
    return ClassifyError("internal error; the server log has the details")


def _set_status(grpc_context: RayServegRPCContext, error: ClassifyError) -> None:
    grpc_context.set_code(grpc.StatusCode[error.code.name])
    grpc_context.set_details(error.message)
    grpc_context.set_trailing_metadata(
        [(wire.REASON_METADATA_KEY, pb.ErrorReason.Name(wire.error_reason(error.reason)))]
    )
