"""oip.py: Open Inference Protocol requests checked and answers built, without a server (the
real clients run against the real server in tests/interop)."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from imgclf_serve import oip
from imgclf_serve.errors import (
    ClassifyError,
    Code,
    InvalidArgument,
    InvalidImage,
    ModelNotFound,
    Overloaded,
)
from imgclf_serve.inference import grpc_service_pb2 as pb
from imgclf_serve.results import ItemError, ItemResult, Prediction
from imgclf_serve.spread import payload_bytes

LITE0 = oip.ModelFacts("efficientnet-lite0", input_size=224, num_classes=1000)
TOP3 = (
    Prediction("tiger", 292, 0.9),
    Prediction("tiger cat", 282, 0.05),
    Prediction("lynx", 287, 0.01),
)


def raw_bytes(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def request(
    name: str = "IMAGE", datatype: str = "BYTES", shape: tuple[int, ...] = (2,), **kwargs: object
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="efficientnet-lite0", **kwargs)  # type: ignore[arg-type]
    message.inputs.add(name=name, datatype=datatype, shape=list(shape))
    return message


def test_bytes_input_from_raw_contents_or_typed_contents() -> None:
    raw = request(raw_input_contents=[raw_bytes(b"jpeg-1", b"", b"png-3")], shape=(3,))
    assert oip.infer_call(raw, LITE0, 256).images == [b"jpeg-1", b"", b"png-3"]
    typed = request(shape=(2, 1))
    typed.inputs[0].contents.bytes_contents.extend([b"a", b"b"])
    call = oip.infer_call(typed, LITE0, 256)
    assert call.images == [b"a", b"b"] and call.top_k == 5 and call.k == 5
    assert [o.name for o in call.outputs] == list(oip.OUTPUTS)  # none asked: all of them


def test_pixels_input_is_split_into_per_image_arrays() -> None:
    pixels = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    message = request("PIXELS", "FP32", (2, 3, 224, 224), raw_input_contents=[pixels.tobytes()])
    call = oip.infer_call(message, LITE0, 256)
    assert len(call.images) == 2 and payload_bytes(call.images) == pixels.nbytes
    assert all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in call.images)
    np.testing.assert_array_equal(call.images[1], pixels[1])


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            pb.ModelInferRequest(model_name="m"),
            "takes one input, IMAGE (BYTES [N]: encoded images) or PIXELS "
            "(FP32 [N,3,224,224]); got none",
        ),
        (request("TENSOR"), "unknown input 'TENSOR'"),
        (request(datatype="FP32"), "input IMAGE takes datatype BYTES; got 'FP32'"),
        (request(shape=(2, 2)), "input IMAGE takes shape [N] or [N,1]; got [2,2]"),
        (
            request(shape=(3,), raw_input_contents=[raw_bytes(b"a")]),
            "has shape [3] but holds 1 elements",
        ),
        (request(raw_input_contents=[b"\x05\x00\x00\x00ab"]), "claims 5 bytes; only 2 remain"),
        (request(raw_input_contents=[b"\x05\x00"]), "end inside an element's length prefix"),
        (request(shape=(0,)), "holds no images"),
        (
            request("PIXELS", "FP32", (1, 3, 256, 256)),
            "takes shape [N,3,224,224] (preprocessed for efficientnet-lite0); got [1,3,256,256]",
        ),
        (
            request("PIXELS", "FP32", (1, 3, 224, 224), raw_input_contents=[b"\0" * 8]),
            "(150528 elements) but holds 2",
        ),
        (
            request("PIXELS", "FP32", (1, 3, 224, 224), raw_input_contents=[b"\0" * 7]),
            "not a whole number of FP32",
        ),
    ],
)
def test_malformed_requests_say_what_is_expected(
    message: pb.ModelInferRequest, expected: str
) -> None:
    with pytest.raises(InvalidArgument) as error:
        oip.infer_call(message, LITE0, 256)
    assert expected in error.value.message


def test_too_many_images_and_non_finite_pixels_are_refused() -> None:
    message = request(shape=(3,), raw_input_contents=[raw_bytes(b"a", b"b", b"c")])
    with pytest.raises(InvalidArgument, match="3 images in one call, over the limit of 2"):
        oip.infer_call(message, LITE0, 2)
    pixels = np.zeros((2, 3, 224, 224), dtype=np.float32)
    pixels[1, 0, 5, 5] = np.nan
    message = request("PIXELS", "FP32", pixels.shape, raw_input_contents=[pixels.tobytes()])
    with pytest.raises(InvalidArgument, match="PIXELS element 1: holds NaN or infinite values"):
        oip.infer_call(message, LITE0, 256)


def test_parameters_top_k_and_classification_set_how_many_predictions() -> None:
    message = request(shape=(1,), raw_input_contents=[raw_bytes(b"a")])
    message.parameters["top_k"].int64_param = 2
    message.outputs.add(name="CLASS_INDEX")
    message.outputs.add(name="PROBABILITIES").parameters["classification"].int64_param = 3
    call = oip.infer_call(message, LITE0, 256)
    assert call.top_k == 2 and call.k == 3
    assert call.outputs == (oip.WantedOutput("CLASS_INDEX"), oip.WantedOutput("PROBABILITIES", 3))
    for bad in (0, 1001):
        message.parameters["top_k"].int64_param = bad
        with pytest.raises(
            InvalidArgument, match=r"parameter top_k must be an integer in \[1, 1000\]"
        ):
            oip.infer_call(message, LITE0, 256)
    message.parameters["top_k"].string_param = "5"
    with pytest.raises(InvalidArgument, match="got '5'"):
        oip.infer_call(message, LITE0, 256)
    unknown = request(shape=(1,), raw_input_contents=[raw_bytes(b"a")])
    unknown.outputs.add(name="LOGITS")
    with pytest.raises(
        InvalidArgument,
        match="unknown output 'LOGITS'; outputs: PROBABILITIES, CLASS_INDEX, LABELS",
    ):
        oip.infer_call(unknown, LITE0, 256)


def test_response_outputs_are_raw_little_endian_in_request_order() -> None:
    message = request(shape=(2,), raw_input_contents=[raw_bytes(b"a", b"b")], id="call-7")
    message.parameters["top_k"].int64_param = 2
    message.outputs.add(name="LABELS")
    message.outputs.add(name="PROBABILITIES")
    message.outputs.add(name="CLASS_INDEX").parameters["classification"].int64_param = 1
    call = oip.infer_call(message, LITE0, 256)
    results = [ItemResult(TOP3), ItemResult(TOP3[1:] + TOP3[:1])]
    response = oip.infer_response(message, call, LITE0, results)
    assert (response.model_name, response.model_version, response.id) == (
        "efficientnet-lite0",
        "1",
        "call-7",
    )
    labels, probabilities, classification = response.outputs
    assert (labels.datatype, list(labels.shape)) == ("BYTES", [2, 2])
    assert response.raw_output_contents[0] == raw_bytes(
        b"tiger", b"tiger cat", b"tiger cat", b"lynx"
    )
    assert (probabilities.datatype, list(probabilities.shape)) == ("FP32", [2, 2])
    np.testing.assert_allclose(
        np.frombuffer(response.raw_output_contents[1], "<f4"), [0.9, 0.05, 0.05, 0.01]
    )
    assert (classification.datatype, list(classification.shape)) == ("BYTES", [2, 1])
    assert response.raw_output_contents[2] == raw_bytes(
        b"0.900000:292:tiger", b"0.050000:282:tiger cat"
    )


def test_one_failed_image_fails_the_call_naming_its_index_caller_mistakes_first() -> None:
    ok = ItemResult(TOP3)
    shed = ItemResult(error=ItemError.from_exception(Overloaded("replica full")))
    bad = ItemResult(error=ItemError.from_exception(InvalidImage("not an image (unknown format)")))
    assert oip.first_failure([ok, ok], "IMAGE") is None
    error = oip.first_failure([ok, shed, bad], "IMAGE")
    assert isinstance(error, ClassifyError) and error.code is Code.INVALID_ARGUMENT
    assert (
        error.message
        == "input IMAGE element 2: not an image (unknown format) (2 of 3 images failed)"
    )
    only_shed = oip.first_failure([shed, ok], "IMAGE")
    assert only_shed is not None and only_shed.code is Code.RESOURCE_EXHAUSTED


def test_versions_and_metadata() -> None:
    oip.check_version(LITE0, "")
    oip.check_version(LITE0, "1")
    with pytest.raises(
        ModelNotFound, match="model 'efficientnet-lite0' has no version '2'; versions: 1"
    ):
        oip.check_version(LITE0, "2")
    version_3 = oip.ModelFacts("colors", 32, 10, version="3")
    oip.check_version(version_3, "3")
    assert oip.model_metadata(version_3).versions == ["3"]
    with pytest.raises(ModelNotFound, match="versions: 3"):
        oip.check_version(version_3, "1")
    metadata = oip.model_metadata(LITE0)
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("IMAGE", "BYTES", [-1, 1]),
        ("PIXELS", "FP32", [-1, 3, 224, 224]),
    ]
    assert [t.name for t in metadata.outputs] == list(oip.OUTPUTS) and metadata.versions == ["1"]
    assert "classification" in oip.server_metadata("0.1.0").extensions


def test_generated_messages_pickle_as_rays_python_proxy_sends_them() -> None:
    """Ray's gRPC proxy pickles the request for the ingress: the message classes must name the
    module they live in (scripts/protos.py rewrites the generated module name)."""
    message = request(shape=(1,), raw_input_contents=[raw_bytes(b"a")])
    assert type(message).__module__ == "imgclf_serve.inference.grpc_service_pb2"
    assert pickle.loads(pickle.dumps(message)) == message
