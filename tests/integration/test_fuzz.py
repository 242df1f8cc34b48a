"""Property-based fuzzing of the request fields against the real server (hypothesis): random
bytes, top_k, model names and batch shapes; for the Open Inference Protocol, random inputs
(names, datatypes, shapes, raw and typed contents), parameters, outputs and versions.
Invariant: a documented status code, never INTERNAL or UNKNOWN, messages without internals,
and the next valid request succeeds."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from imgclf_serve.inference import grpc_service_pb2 as oip_pb
from imgclf_serve.inference import grpc_service_pb2_grpc as oip_grpc
from tests.integration.conftest import Server, assert_no_internals
from tests.integration.harness import Tally, report
from tests.integration.open_inference import raw_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]

DOCUMENTED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
SEED_PREFIXES = [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP"]
images = st.builds(
    lambda prefix, tail: prefix + tail,
    st.sampled_from(SEED_PREFIXES),
    st.binary(max_size=2048),
)
top_ks = st.one_of(st.just(0), st.integers(min_value=0, max_value=2**32 - 1))
models = st.one_of(
    st.just(""), st.sampled_from(["efficientnet-lite0", "resnet50"]), st.text(max_size=40)
)
FUZZED = Tally()
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def check_failure(error: grpc.RpcError) -> None:
    FUZZED.record(error.code().name)
    assert error.code() in DOCUMENTED, f"{error.code()}: {error.details()}"
    assert_no_internals(error.details())


@FUZZ
@given(image=images, top_k=top_ks, model=models)
def test_classify_fields(
    stub: pb_grpc.ClassifierServiceStub, image: bytes, top_k: int, model: str
) -> None:
    try:
        stub.Classify(pb.ClassifyRequest(image=image, top_k=top_k, model=model), timeout=60)
        FUZZED.record("OK")
    except grpc.RpcError as error:
        check_failure(error)


@FUZZ
@given(batch=st.lists(images, min_size=0, max_size=12), top_k=top_ks)
def test_classify_batch_shapes(
    stub: pb_grpc.ClassifierServiceStub, batch: list[bytes], top_k: int
) -> None:
    try:
        reply = stub.ClassifyBatch(pb.ClassifyBatchRequest(images=batch, top_k=top_k), timeout=120)
    except grpc.RpcError as error:
        check_failure(error)
        return
    FUZZED.record("OK")
    assert len(reply.items) == len(batch)
    for item in reply.items:
        if item.HasField("error"):
            assert item.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            assert_no_internals(item.error.message)


names = st.one_of(
    st.sampled_from(["IMAGE", "PIXELS", "PROBABILITIES", "LABELS", "CLASS_INDEX", ""]),
    st.text(alphabet="ABCXYZ_abc", max_size=8),
)
datatypes = st.sampled_from(["BYTES", "FP32", "INT64", "FP16", "UINT8", "", "bytes"])
dimensions = st.one_of(st.sampled_from([1, 3, 224]), st.integers(-2, 5), st.just(2**62))
contents = st.one_of(
    st.none(),
    st.builds(raw_bytes, st.lists(images, max_size=4)),  # well-formed BYTES elements
    st.binary(max_size=512),
)


@st.composite
def infer_requests(draw: st.DrawFn) -> oip_pb.ModelInferRequest:
    request = oip_pb.ModelInferRequest(
        model_name=draw(st.sampled_from(["efficientnet-lite0", "resnet50", "", "nope"])),
        model_version=draw(st.sampled_from(["", "1", "2", "latest"])),
        id=draw(st.text(alphabet="abc-123", max_size=12)),
    )
    for _ in range(draw(st.integers(0, 2))):
        tensor = request.inputs.add(
            name=draw(names),
            datatype=draw(datatypes),
            shape=draw(st.lists(dimensions, max_size=5)),
        )
        tensor.contents.bytes_contents.extend(draw(st.lists(images, max_size=3)))
        tensor.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=8)))
    raw = draw(st.lists(contents, max_size=2))
    request.raw_input_contents.extend(r for r in raw if r is not None)
    parameter = draw(st.sampled_from(["top_k", "classification", "other"]))
    value = draw(st.one_of(st.integers(-5, 2000), st.text(max_size=4), st.booleans()))
    if isinstance(value, bool):
        request.parameters[parameter].bool_param = value
    elif isinstance(value, int):
        request.parameters[parameter].int64_param = value
    else:
        request.parameters[parameter].string_param = value
    for name in draw(st.lists(names, max_size=3)):
        output = request.outputs.add(name=name)
        if draw(st.booleans()):
            output.parameters["classification"].int64_param = draw(st.integers(-1, 1001))
    return request


@FUZZ
@given(request=infer_requests())
def test_open_inference_model_infer_fields(
    server: Server, request: oip_pb.ModelInferRequest
) -> None:
    with grpc.insecure_channel(server.cluster.grpc_target) as channel:
        try:
            oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=120)
            FUZZED.record("OK")
        except grpc.RpcError as error:
            check_failure(error)


def test_the_server_still_serves_after_the_fuzzing(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    reply = stub.Classify(pb.ClassifyRequest(image=seed_images["tiger.jpg"]), timeout=60)
    assert reply.predictions[0].label == "tiger"
    report("fuzzing", f"fuzzed calls by status: {dict(FUZZED.codes)}; a valid call succeeds after")
