"""Domain results <-> imgclf.v1 messages. The only module besides ingress.py that sees protos."""

from __future__ import annotations

from typing import cast

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf_serve.devices import DeviceKind
from imgclf_serve.errors import Reason
from imgclf_serve.results import ItemResult, Prediction, ReplicaInfo, ServedBy

DEVICE_KIND = {
    DeviceKind.CPU: pb.DEVICE_KIND_CPU,
    DeviceKind.GPU: pb.DEVICE_KIND_GPU,
    DeviceKind.NEURON_CORE: pb.DEVICE_KIND_NEURON_CORE,
}
BACKEND = {
    "cpu": pb.BACKEND_CPU,
    "cuda": pb.BACKEND_CUDA,
    "neuron": pb.BACKEND_NEURON,
    "neuronx": pb.BACKEND_NEURONX,
    "null": pb.BACKEND_NULL,
}


REASON_METADATA_KEY = "imgclf-error-reason"


def error_reason(reason: Reason) -> pb.ErrorReason:
    return cast(pb.ErrorReason, pb.ErrorReason.Value(f"ERROR_REASON_{reason.name}"))


def predictions_to_proto(predictions: tuple[Prediction, ...]) -> list[pb.Prediction]:
    return [
        pb.Prediction(label=p.label, class_index=p.class_index, probability=p.probability)
        for p in predictions
    ]


def served_by_to_proto(served_by: ServedBy) -> pb.ServedBy:
    return pb.ServedBy(
        replica_id=served_by.replica_id,
        device_kind=DEVICE_KIND[served_by.device_kind],
        core_ids=served_by.core_ids,
        backend=BACKEND.get(served_by.backend, pb.BACKEND_UNSPECIFIED),
        node_id=served_by.node_id,
    )


def classify_response(model: str, result: ItemResult) -> pb.ClassifyResponse:
    response = pb.ClassifyResponse(
        model=model, predictions=predictions_to_proto(result.predictions)
    )
    if result.served_by is not None:
        response.served_by.CopyFrom(served_by_to_proto(result.served_by))
    return response


def batch_item(index: int, result: ItemResult) -> pb.ClassifyBatchItem:
    item = pb.ClassifyBatchItem(predictions=predictions_to_proto(result.predictions))
    if result.served_by is not None:
        item.served_by.CopyFrom(served_by_to_proto(result.served_by))
    if result.error is not None:
        item.error.code = int(result.error.code)
        item.error.index = index
        item.error.message = result.error.message
        item.error.reason = error_reason(result.error.reason)
    return item


def model_info(info: ReplicaInfo, replicas: int) -> pb.ModelInfo:
    """`info` from one of the model's replicas: the version it reports is the one it runs
    (during a rolling update, old and new ones answer)."""
    return pb.ModelInfo(
        name=info.model,
        version=info.version,
        input_height=info.input_size,
        input_width=info.input_size,
        num_classes=info.num_classes,
        backend=BACKEND.get(info.served_by.backend, pb.BACKEND_UNSPECIFIED),
        device_kind=DEVICE_KIND[info.served_by.device_kind],
        replicas=replicas,
        max_batch_size=info.max_batch_size,
    )
