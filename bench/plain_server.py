"""The Python gRPC limit: one grpc.aio process answering imgclf.v1 Classify/ClassifyBatch with
the null model's work per image (header check, top-k of fixed probabilities) and nothing else:
no Ray, no hops. imgclf on the null model is measured against it.

    python -m bench.plain_server --port 50051
"""

from __future__ import annotations

import argparse
import asyncio

import grpc

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from imgclf_serve import wire
from imgclf_serve.backends.null import fixed_probabilities
from imgclf_serve.devices import DeviceKind
from imgclf_serve.errors import ClassifyError
from imgclf_serve.models import imagenet_labels
from imgclf_serve.postprocess import DEFAULT_TOP_K, top_k
from imgclf_serve.preprocess import ImageLimits, check_header
from imgclf_serve.results import ItemError, ItemResult, ServedBy

MODEL = "null"
SERVED_BY = ServedBy(
    replica_id="plain", device_kind=DeviceKind.CPU, core_ids=(), backend="null", node_id=""
)


class PlainClassifier(pb_grpc.ClassifierServiceServicer):
    def __init__(self) -> None:
        self._probabilities = fixed_probabilities(1000)
        self._labels = imagenet_labels()
        self._limits = ImageLimits()

    def _classify(self, image: bytes, k: int) -> ItemResult:
        try:
            check_header(image, self._limits)
        except ClassifyError as exc:
            return ItemResult(served_by=SERVED_BY, error=ItemError.from_exception(exc))
        return ItemResult(top_k(self._probabilities, k, self._labels), SERVED_BY)

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        result = self._classify(request.image, request.top_k or DEFAULT_TOP_K)
        return wire.classify_response(MODEL, result)

    async def ClassifyBatch(
        self, request: pb.ClassifyBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyBatchResponse:
        k = request.top_k or DEFAULT_TOP_K
        items = [
            wire.batch_item(index, self._classify(image, k))
            for index, image in enumerate(request.images)
        ]
        return pb.ClassifyBatchResponse(model=MODEL, items=items)


async def serve(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_ClassifierServiceServicer_to_server(PlainClassifier(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_server")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
