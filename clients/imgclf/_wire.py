"""imgclf.v1 messages -> the client's result values. The only client module that reads protos."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

from imgclf.errors import reason_name
from imgclf.results import (
    Backend,
    BatchItem,
    Classification,
    DeviceKind,
    HealthStatus,
    ItemError,
    Limits,
    ModelInfo,
    Prediction,
    ServedBy,
    ServerModels,
)
from imgclf.v1 import classifier_service_pb2 as pb

_DEVICE_KIND = {
    pb.DEVICE_KIND_CPU: DeviceKind.CPU,
    pb.DEVICE_KIND_GPU: DeviceKind.GPU,
    pb.DEVICE_KIND_NEURON_CORE: DeviceKind.NEURON_CORE,
}
_BACKEND = {
    pb.BACKEND_CPU: Backend.CPU,
    pb.BACKEND_CUDA: Backend.CUDA,
    pb.BACKEND_NEURON: Backend.NEURON,
    pb.BACKEND_NEURONX: Backend.NEURONX,
    pb.BACKEND_NULL: Backend.NULL,
}
_STATUS_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}
_REASON = {number: reason_name(name) for name, number in pb.ErrorReason.items()}


def predictions(messages: list[pb.Prediction]) -> tuple[Prediction, ...]:
    return tuple(Prediction(p.label, p.class_index, p.probability) for p in messages)


def served_by(message: pb.ServedBy) -> ServedBy:
    return ServedBy(
        replica_id=message.replica_id,
        device_kind=_DEVICE_KIND.get(message.device_kind, DeviceKind.UNSPECIFIED),
        core_ids=tuple(message.core_ids),
        backend=_BACKEND.get(message.backend, Backend.UNSPECIFIED),
        node_id=message.node_id,
    )


def classification(response: pb.ClassifyResponse) -> Classification:
    return Classification(
        model=response.model,
        predictions=predictions(list(response.predictions)),
        served_by=served_by(response.served_by) if response.HasField("served_by") else None,
    )


def batch_item(model: str, index: int, item: pb.ClassifyBatchItem) -> BatchItem:
    """One item of a ClassifyBatchResponse; `index` is the image's place in the caller's list."""
    where = served_by(item.served_by) if item.HasField("served_by") else None
    if item.HasField("error"):
        return ItemError(
            index=index,
            code=_STATUS_BY_NUMBER.get(item.error.code, grpc.StatusCode.UNKNOWN),
            reason=_REASON.get(item.error.reason, ""),
            # The server counts within its call; the caller counts within the whole batch.
            message=f"image {index}: {item.error.message}",
            served_by=where,
        )
    return Classification(model, predictions(list(item.predictions)), where)


def classify_request(image: bytes, model: str | None, top_k: int | None) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(image=image, model=model or "", top_k=top_k or 0)


def server_models(response: pb.ListModelsResponse) -> ServerModels:
    return ServerModels(
        models=tuple(
            ModelInfo(
                name=m.name,
                input_height=m.input_height,
                input_width=m.input_width,
                num_classes=m.num_classes,
                backend=_BACKEND.get(m.backend, Backend.UNSPECIFIED),
                device_kind=_DEVICE_KIND.get(m.device_kind, DeviceKind.UNSPECIFIED),
                replicas=m.replicas,
                max_batch_size=m.max_batch_size,
                version=m.version,
            )
            for m in response.models
        ),
        default_model=response.default_model,
        limits=Limits(
            max_images_per_batch=response.limits.max_images_per_batch,
            max_image_bytes=response.limits.max_image_bytes,
            max_image_pixels=response.limits.max_image_pixels,
            max_request_bytes=response.limits.max_request_bytes,
        ),
    )


def health_status(response: health_pb2.HealthCheckResponse) -> HealthStatus:
    return HealthStatus(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
