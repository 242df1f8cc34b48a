"""Per-call limits protect the proxy's memory: a call over max_request_bytes is refused by the
ingress naming the limit, and a message over the proxy's cap is refused by the gRPC proxy
before it is parsed; nothing reaches a model, and the server keeps serving."""

from __future__ import annotations

import os

import grpc
import pytest

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from imgclf_serve.front import MAX_MESSAGE_BYTES
from tests.integration.conftest import REQUEST_LIMIT, Server, assert_no_internals
from tests.integration.harness import report

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
MiB = 1024 * 1024


def test_a_call_over_max_request_bytes_is_refused_naming_the_limit(server: Server) -> None:
    images = [os.urandom(12 * MiB) for _ in range(3)]  # each under max_image_bytes (20 MiB)
    with grpc.insecure_channel(
        server.cluster.grpc_target, options=[("grpc.max_send_message_length", -1)]
    ) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ClassifyBatch(pb.ClassifyBatchRequest(images=images), timeout=60)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (
            f"over the limit of {REQUEST_LIMIT} bytes (max_request_bytes)"
            in refused.value.details()
        )
        assert_no_internals(refused.value.details())

        huge = [os.urandom(18 * MiB) for _ in range(4)]  # 72 MiB: over the proxy's cap
        with pytest.raises(grpc.RpcError) as too_big:
            stub.ClassifyBatch(pb.ClassifyBatchRequest(images=huge), timeout=60)
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(MAX_MESSAGE_BYTES) in too_big.value.details()

        reply = stub.Classify(pb.ClassifyRequest(image=server.tiger), timeout=60)
        assert reply.predictions[0].label == "tiger"
    report(
        "request limits",
        f"36 MiB call: {refused.value.code().name} (limit {REQUEST_LIMIT} bytes); 72 MiB call: "
        f"{too_big.value.code().name} from the ingress's gRPC server "
        f"(cap {MAX_MESSAGE_BYTES} bytes); the next call OK",
    )
