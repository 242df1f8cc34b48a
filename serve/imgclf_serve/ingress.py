"""The gRPC edge: imgclf.v1.ClassifierService, inference.GRPCInferenceService (the Open
Inference Protocol) and grpc.health.v1.Health methods, on one port.

Wiring only: protos in, protos out (wire.py and oip.py translate); the request path is
classifier.py, readiness is readiness.py. Every failure becomes a status code and a short
message (never a traceback) in `_answer`, which also records each call's metrics from the
per-image codes its work returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2
from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.grpc_util import RayServegRPCContext
from ray.serve.handle import DeploymentHandle

import imgclf_serve
from imgclf.v1 import classifier_service_pb2 as pb
from imgclf_serve import metrics, oip, wire
from imgclf_serve.classifier import Classifier, ServedModel
from imgclf_serve.devices import DeviceKind
from imgclf_serve.errors import ClassifyError, quoted
from imgclf_serve.failures import as_classify_error
from imgclf_serve.inference import grpc_service_pb2 as oip_pb
from imgclf_serve.readiness import CONTROLLER_TIMEOUT_S, Readiness, running_in_serve
from imgclf_serve.results import ReplicaInfo
from imgclf_serve.settings import AdmissionConfig, IngressUserConfig, LimitsConfig
from imgclf_serve.spread import item_codes

logger = logging.getLogger("ray.serve")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ClassifierService"].full_name
PACKAGE_VERSION = imgclf_serve.__version__
OIP_RPCS = frozenset(oip_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods_by_name)
# The longest the health service waits (for Serve's controller, or a replica's description);
# the readiness probes' timeouts exceed it (k8s/).
HEALTH_PING_TIMEOUT_S = CONTROLLER_TIMEOUT_S
HEALTH_WATCH_PERIOD_S = 2.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
OIP_INSTANCE_KIND = {
    DeviceKind.CPU: oip_pb.ModelInstanceGroup.KIND_CPU,
    DeviceKind.GPU: oip_pb.ModelInstanceGroup.KIND_GPU,
    DeviceKind.NEURON_CORE: oip_pb.ModelInstanceGroup.KIND_MODEL,
}

Response = TypeVar("Response")
# What an RPC's work returns: its response and each image's status code name (metrics).
Answered = tuple[Response, list[str]]


@serve.deployment
class ClassifierIngress:
    def __init__(
        self,
        handles: dict[str, DeploymentHandle[Any]],
        models: dict[str, ServedModel],
        default_model: str,
        limits: LimitsConfig,
        admission: AdmissionConfig,
    ) -> None:
        self._handles = handles
        self._models = models
        self._metrics = metrics.IngressMetrics()
        self._readiness = Readiness(
            {name: model.min_ready_replicas for name, model in models.items()},
            running_in_serve(serve.get_replica_context().app_name),
        )
        self._classifier = Classifier(
            handles,
            models,
            default_model,
            limits,
            admission,
            self._metrics.share_event,
            self._readiness.last_running,
        )
        self._facts = {
            name: oip.ModelFacts(name, model.input_size, model.num_classes, model.version)
            for name, model in models.items()
        }
        self._last_described: dict[str, ReplicaInfo] = {}
        self._refresher: asyncio.Task[None] | None = None

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply the ingress's user_config (straggler hedging) in place."""
        config = IngressUserConfig.model_validate(user_config)
        self._classifier.set_hedging(config.hedging)
        logger.info("ingress user_config: %s", config)

    async def check_health(self) -> None:
        """Ray Serve's periodic health check of this ingress replica. It never fails the
        ingress over its models (their replicas have their own check); it refreshes the warm
        replica counts the health service answers from if Serve's controller is unreachable,
        and keeps them fresh in the background (batches are cut for the replicas running)."""
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._readiness.refresh_forever())
        await self._readiness.running()

    # imgclf.v1.ClassifierService

    async def Classify(
        self, request: pb.ClassifyRequest, grpc_context: RayServegRPCContext
    ) -> pb.ClassifyResponse:
        work, empty = self._classify(request), pb.ClassifyResponse()
        return await self._answer("Classify", request.model, 1, grpc_context, work, empty)

    async def ClassifyBatch(
        self, request: pb.ClassifyBatchRequest, grpc_context: RayServegRPCContext
    ) -> pb.ClassifyBatchResponse:
        work, empty = self._classify_batch(request), pb.ClassifyBatchResponse()
        images = len(request.images)
        return await self._answer("ClassifyBatch", request.model, images, grpc_context, work, empty)

    async def ListModels(
        self, request: pb.ListModelsRequest, grpc_context: RayServegRPCContext
    ) -> pb.ListModelsResponse:
        work, empty = self._list_models(), pb.ListModelsResponse()
        return await self._answer("ListModels", None, 0, grpc_context, work, empty)

    async def _classify(self, request: pb.ClassifyRequest) -> Answered[pb.ClassifyResponse]:
        name, k = self._classifier.resolve(request.model, request.top_k)
        result = await self._classifier.classify(name, request.image, k)
        return wire.classify_response(name, result), item_codes([result])

    async def _classify_batch(
        self, request: pb.ClassifyBatchRequest
    ) -> Answered[pb.ClassifyBatchResponse]:
        name, k = self._classifier.resolve(request.model, request.top_k)
        results = await self._classifier.classify_images(name, list(request.images), k)
        items = [wire.batch_item(index, result) for index, result in enumerate(results)]
        return pb.ClassifyBatchResponse(model=name, items=items), item_codes(results)

    async def _list_models(self) -> Answered[pb.ListModelsResponse]:
        infos = await asyncio.gather(*(self._describe_or_last(name) for name in self._models))
        limits = self._classifier.limits
        response = pb.ListModelsResponse(
            models=[
                wire.model_info(info, self._classifier.replicas_of(info.model)) for info in infos
            ],
            default_model=self._classifier.default_model,
            limits=pb.Limits(
                max_images_per_batch=limits.max_images_per_batch,
                max_image_bytes=limits.max_image_bytes,
                max_image_pixels=limits.max_image_pixels,
                max_request_bytes=limits.max_request_bytes,
            ),
        )
        return response, []

    # inference.GRPCInferenceService (the Open Inference Protocol; oip.py)

    async def ServerLive(
        self, request: oip_pb.ServerLiveRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.ServerLiveResponse:
        return oip_pb.ServerLiveResponse(live=True)  # answering is being live

    async def ServerReady(
        self, request: oip_pb.ServerReadyRequest, grpc_context: RayServegRPCContext
    ) -> oip_pb.ServerReadyResponse:
        return oip_pb.ServerReadyResponse(ready=await self._readiness.ready(list(self._models)))

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
        images = self._claimed_images(request)
        return await self._answer(
            "ModelInfer", request.model_name, images, grpc_context, work, empty
        )

    async def _model_infer(
        self, request: oip_pb.ModelInferRequest
    ) -> Answered[oip_pb.ModelInferResponse]:
        name = self._versioned(request.model_name, request.model_version)
        limit = self._classifier.limits.max_images_per_batch
        call = oip.infer_call(request, self._facts[name], limit)
        results = await self._classifier.classify_images(name, call.images, call.k)
        failure = oip.first_failure(results, request.inputs[0].name)
        if failure is not None:
            raise failure
        return oip.infer_response(request, call, self._facts[name], results), item_codes(results)

    async def _model_ready(self, model: str, version: str) -> Answered[oip_pb.ModelReadyResponse]:
        name = self._versioned(model, version)
        return oip_pb.ModelReadyResponse(ready=await self._readiness.ready([name])), []

    async def _model_metadata(
        self, request: oip_pb.ModelMetadataRequest
    ) -> Answered[oip_pb.ModelMetadataResponse]:
        name = self._versioned(request.name, request.version)
        return oip.model_metadata(self._facts[name]), []

    async def _model_config(
        self, request: oip_pb.ModelConfigRequest
    ) -> Answered[oip_pb.ModelConfigResponse]:
        name = self._versioned(request.name, request.version)
        info = await self._describe_or_last(name)
        config = oip.model_config(
            self._facts[name],
            max_batch_size=self._classifier.limits.max_images_per_batch,
            replicas=self._classifier.replicas_of(name),
            instance_kind=OIP_INSTANCE_KIND[info.served_by.device_kind],
            backend=info.served_by.backend,
            forward_batch_size=info.max_batch_size,
        )
        return oip_pb.ModelConfigResponse(config=config), []

    async def _repository_index(self, ready_only: bool) -> Answered[oip_pb.RepositoryIndexResponse]:
        index = oip_pb.RepositoryIndexResponse()
        for name in sorted(self._models):
            ready = await self._readiness.ready([name])
            if ready or not ready_only:
                index.models.add(
                    name=name,
                    version=self._facts[name].version,
                    state="READY" if ready else "UNAVAILABLE",
                    reason="" if ready else "fewer warm replicas than min_ready_replicas",
                )
        return index, []

    def _claimed_images(self, request: oip_pb.ModelInferRequest) -> int:
        """Images a ModelInfer call counts in the metrics: its first input's first dimension,
        bounded by the per-call limit (a malformed call may claim any number)."""
        shape = request.inputs[0].shape if request.inputs else []
        limit = self._classifier.limits.max_images_per_batch
        return min(max(shape[0], 0), limit) if shape else 0

    def _versioned(self, model: str, version: str) -> str:
        name = self._classifier.model_named(model)
        oip.check_version(self._facts[name], version)
        return name

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
        return health_pb2.HealthCheckResponse(status=await self._health_status(models))

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
            status = await self._health_status(models)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            await asyncio.sleep(HEALTH_WATCH_PERIOD_S)

    def _health_scope(self, service: str) -> list[str] | None:
        if service in ("", SERVICE_NAME):
            return list(self._models)
        return [service] if service in self._models else None

    async def _health_status(self, models: list[str]) -> int:
        return int(SERVING if await self._readiness.ready(models) else NOT_SERVING)

    # helpers

    async def _answer(
        self,
        rpc: str,
        model: str | None,
        images: int,
        grpc_context: RayServegRPCContext,
        work: Awaitable[Answered[Response]],
        empty: Response,
    ) -> Response:
        """Run an RPC's work with what every RPC needs: one status code and message for any
        failure (never a traceback), and the call's metrics."""
        started = time.perf_counter()
        self._metrics.started(rpc)
        code = metrics.CANCELLED  # unless the work ends: the caller gave up (deadline, cancel)
        image_codes: list[str] = []
        try:
            response, image_codes = await work
            code = metrics.OK
        except Exception as exc:
            error = as_classify_error(exc, rpc)
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
        name = model or self._classifier.default_model
        return name if name in self._models else metrics.UNKNOWN_MODEL

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


def _protocol(rpc: str) -> str:
    return metrics.OPEN_INFERENCE if rpc in OIP_RPCS else metrics.IMGCLF_V1


def _set_status(grpc_context: RayServegRPCContext, error: ClassifyError) -> None:
    grpc_context.set_code(grpc.StatusCode[error.code.name])
    grpc_context.set_details(error.message)
    grpc_context.set_trailing_metadata(
        [(wire.REASON_METADATA_KEY, pb.ErrorReason.Name(wire.error_reason(error.reason)))]
    )
