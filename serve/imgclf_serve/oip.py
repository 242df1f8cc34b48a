"""The Open Inference Protocol (KServe v2, Triton's gRPC API) <-> imgclf's domain. Beside
wire.py (imgclf.v1), the only module besides ingress.py that sees these protos.

What a model looks like through the protocol:
- inputs, exactly one per call: `IMAGE` BYTES [N] or [N,1], each element an encoded image (the
  formats and limits of Classify); or `PIXELS` FP32 [N,3,S,S], images the caller preprocessed
  (resized, centre-cropped, normalised by the model's mean and std, channels first);
- outputs, top-k per image, most probable first: `PROBABILITIES` FP32 [N,k], `CLASS_INDEX`
  INT64 [N,k], `LABELS` BYTES [N,k]; k is the request parameter `top_k` (default 5). An output
  requested with the parameter `classification` = c (Triton's classification extension) is
  BYTES [N,c] of "probability:index:label" instead.
The protocol has no per-item errors: one bad image fails the call, naming its index.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from imgclf_serve.errors import ClassifyError, Code, InvalidArgument, ModelNotFound, quoted
from imgclf_serve.inference import grpc_service_pb2 as pb
from imgclf_serve.postprocess import DEFAULT_TOP_K
from imgclf_serve.results import ImagePayload, ItemResult, Prediction

SERVER_NAME = "imgclf"
EXTENSIONS = ("classification", "model_configuration", "parameters")
PLATFORM = "imgclf"
IMAGE = "IMAGE"
PIXELS = "PIXELS"
PROBABILITIES = "PROBABILITIES"
CLASS_INDEX = "CLASS_INDEX"
LABELS = "LABELS"
OUTPUTS = (PROBABILITIES, CLASS_INDEX, LABELS)
OUTPUT_DATATYPES = {PROBABILITIES: "FP32", CLASS_INDEX: "INT64", LABELS: "BYTES"}
CLASSIFICATION = "classification"
TOP_K = "top_k"
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class ModelFacts:
    """What the protocol's metadata says of a model, known without asking its replicas."""

    name: str
    input_size: int
    num_classes: int
    version: str = "1"

    def pixels_shape(self) -> tuple[int, int, int]:
        return (3, self.input_size, self.input_size)

    def inputs_hint(self) -> str:
        c, h, w = self.pixels_shape()
        return f"{IMAGE} (BYTES [N]: encoded images) or {PIXELS} (FP32 [N,{c},{h},{w}])"


@dataclass(frozen=True)
class WantedOutput:
    """An output to return; `classification` set: as "probability:index:label" strings."""

    name: str
    classification: int | None = None


@dataclass(frozen=True)
class InferCall:
    """A ModelInfer request, checked: the images (encoded, or preprocessed arrays), the number
    of predictions the replicas must return per image, and the outputs to build from them."""

    images: list[ImagePayload]
    top_k: int
    outputs: tuple[WantedOutput, ...]

    @property
    def k(self) -> int:
        """Predictions per image the replicas return: enough for every output."""
        counts = (o.classification for o in self.outputs if o.classification is not None)
        return max([self.top_k, *counts])


def check_version(model: ModelFacts, version: str) -> None:
    """ "" asks for the version deployed; any other must be it (one version is served)."""
    if version not in ("", model.version):
        raise ModelNotFound(
            f"model {quoted(model.name)} has no version {quoted(version)}; "
            f"versions: {model.version}"
        )


def server_metadata(version: str) -> pb.ServerMetadataResponse:
    return pb.ServerMetadataResponse(name=SERVER_NAME, version=version, extensions=EXTENSIONS)


def model_metadata(model: ModelFacts) -> pb.ModelMetadataResponse:
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=model.name,
        versions=[model.version],
        platform=PLATFORM,
        inputs=[
            # [-1, 1], the batch dimension and ModelConfig's dims, as Triton's tooling derives
            # it (perf_analyzer sets shapes from it); requests may also send [N].
            tensor(name=IMAGE, datatype="BYTES", shape=[-1, 1]),
            tensor(name=PIXELS, datatype="FP32", shape=[-1, *model.pixels_shape()]),
        ],
        outputs=[
            tensor(name=name, datatype=OUTPUT_DATATYPES[name], shape=[-1, -1]) for name in OUTPUTS
        ],
    )


def model_config(
    model: ModelFacts,
    *,
    max_batch_size: int,
    replicas: int,
    instance_kind: pb.ModelInstanceGroup.Kind,
    backend: str,
    forward_batch_size: int,
) -> pb.ModelConfig:
    """Triton's ModelConfig: instances are the model's replicas (one per core); a request may
    carry up to the server's per-call image limit; replicas merge requests into forward
    passes of up to `forward_batch_size` images."""
    return pb.ModelConfig(
        name=model.name,
        platform=PLATFORM,
        backend=backend,
        max_batch_size=max_batch_size,
        input=[
            pb.ModelInput(name=IMAGE, data_type=pb.TYPE_STRING, dims=[1], optional=True),
            pb.ModelInput(
                name=PIXELS,
                data_type=pb.TYPE_FP32,
                format=pb.ModelInput.FORMAT_NCHW,
                dims=list(model.pixels_shape()),
                optional=True,
            ),
        ],
        output=[
            pb.ModelOutput(name=PROBABILITIES, data_type=pb.TYPE_FP32, dims=[-1]),
            pb.ModelOutput(name=CLASS_INDEX, data_type=pb.TYPE_INT64, dims=[-1]),
            pb.ModelOutput(name=LABELS, data_type=pb.TYPE_STRING, dims=[-1]),
        ],
        instance_group=[pb.ModelInstanceGroup(name=model.name, count=replicas, kind=instance_kind)],
        dynamic_batching=pb.ModelDynamicBatching(preferred_batch_size=[forward_batch_size]),
    )


def infer_call(request: pb.ModelInferRequest, model: ModelFacts, max_images: int) -> InferCall:
    """Check a ModelInferRequest against `model`; InvalidArgument names what is wrong and what
    was expected."""
    if len(request.inputs) != 1:
        got = ", ".join(repr(i.name) for i in request.inputs) or "none"
        raise InvalidArgument(f"ModelInfer takes one input, {model.inputs_hint()}; got {got}")
    if request.raw_input_contents and len(request.raw_input_contents) != len(request.inputs):
        raise InvalidArgument(
            f"raw_input_contents has {len(request.raw_input_contents)} entries for "
            f"{len(request.inputs)} input; send one per input, or none"
        )
    tensor = request.inputs[0]
    raw = request.raw_input_contents[0] if request.raw_input_contents else None
    if tensor.name == IMAGE:
        images: list[ImagePayload] = list(_encoded_images(tensor, raw))
    elif tensor.name == PIXELS:
        images = list(_pixel_images(tensor, raw, model))
    else:
        raise InvalidArgument(f"unknown input {quoted(tensor.name)}; inputs: {model.inputs_hint()}")
    if not images:
        raise InvalidArgument(f"input {tensor.name} holds no images; send at least one")
    if len(images) > max_images:
        raise InvalidArgument(
            f"{len(images)} images in one call, over the limit of {max_images}; split the batch"
        )
    top_k = _int_parameter(request.parameters, TOP_K, DEFAULT_TOP_K, model.num_classes)
    return InferCall(images, top_k, _wanted_outputs(request.outputs, model.num_classes))


def infer_response(
    request: pb.ModelInferRequest, call: InferCall, model: ModelFacts, results: list[ItemResult]
) -> pb.ModelInferResponse:
    """The outputs `call` wants, from one successful result per image; raw little-endian
    contents, as Triton answers."""
    response = pb.ModelInferResponse(
        model_name=model.name, model_version=model.version, id=request.id
    )
    for wanted in call.outputs:
        k = wanted.classification or call.top_k
        top = [p for result in results for p in result.predictions[:k]]
        datatype, raw = _contents(wanted, top)
        response.outputs.add(name=wanted.name, datatype=datatype, shape=[len(results), k])
        response.raw_output_contents.append(raw)
    return response


def _contents(wanted: WantedOutput, predictions: list[Prediction]) -> tuple[str, bytes]:
    """An output's datatype and raw contents, from its predictions in row-major order."""
    if wanted.classification is not None:
        strings = (f"{p.probability:f}:{p.class_index}:{p.label}" for p in predictions)
        return "BYTES", _bytes_tensor(s.encode() for s in strings)
    if wanted.name == PROBABILITIES:
        return "FP32", np.asarray([p.probability for p in predictions], dtype="<f4").tobytes()
    if wanted.name == CLASS_INDEX:
        return "INT64", np.asarray([p.class_index for p in predictions], dtype="<i8").tobytes()
    return "BYTES", _bytes_tensor(p.label.encode() for p in predictions)


def first_failure(results: list[ItemResult], input_name: str) -> ClassifyError | None:
    """The error a whole call fails with when any image failed (the protocol has no per-item
    errors): the first caller's mistake (INVALID_ARGUMENT: retrying cannot help) if any, else
    the first failure; its message names the image's index."""
    failed = [(i, r.error) for i, r in enumerate(results) if r.error is not None]
    if not failed:
        return None
    invalid = [(i, e) for i, e in failed if e.code is Code.INVALID_ARGUMENT]
    index, error = (invalid or failed)[0]
    message = f"input {input_name} element {index}: {error.message}"
    if len(failed) > 1:
        message += f" ({len(failed)} of {len(results)} images failed)"
    return ClassifyError(message, error.code, error.reason)


def _encoded_images(
    tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None
) -> list[bytes]:
    _expect_datatype(tensor, "BYTES")
    shape = list(tensor.shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 0:
        raise InvalidArgument(f"input {IMAGE} takes shape [N] or [N,1]; got {_shape(shape)}")
    images = _split_bytes(raw) if raw is not None else list(tensor.contents.bytes_contents)
    if len(images) != shape[0]:
        raise InvalidArgument(
            f"input {IMAGE} has shape {_shape(shape)} but holds {len(images)} elements"
        )
    return images


def _pixel_images(
    tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None, model: ModelFacts
) -> list[np.ndarray]:
    _expect_datatype(tensor, "FP32")
    shape = list(tensor.shape)
    per_image = model.pixels_shape()
    if len(shape) != 4 or tuple(shape[1:]) != per_image or shape[0] < 0:
        c, h, w = per_image
        raise InvalidArgument(
            f"input {PIXELS} takes shape [N,{c},{h},{w}] (preprocessed for {model.name}); "
            f"got {_shape(shape)}"
        )
    if raw is not None:
        if len(raw) % 4:
            raise InvalidArgument(
                f"input {PIXELS}: {len(raw)} raw bytes is not a whole number of FP32"
            )
        values = np.frombuffer(raw, dtype="<f4")
    else:
        values = np.asarray(tensor.contents.fp32_contents, dtype=np.float32)
    expected = int(np.prod(shape))
    if values.size != expected:
        raise InvalidArgument(
            f"input {PIXELS} has shape {_shape(shape)} ({expected} elements) "
            f"but holds {values.size}"
        )
    pixels = values.astype(np.float32, copy=False).reshape(shape)
    finite = np.isfinite(pixels).reshape(shape[0], -1).all(axis=1)
    if not finite.all():
        index = int(np.argmin(finite))
        raise InvalidArgument(f"input {PIXELS} element {index}: holds NaN or infinite values")
    return [np.ascontiguousarray(image) for image in pixels]


def _wanted_outputs(
    requested: Iterable[pb.ModelInferRequest.InferRequestedOutputTensor], num_classes: int
) -> tuple[WantedOutput, ...]:
    wanted = []
    for output in requested:
        if output.name not in OUTPUTS:
            raise InvalidArgument(
                f"unknown output {quoted(output.name)}; outputs: {', '.join(OUTPUTS)}"
            )
        classification = None
        if CLASSIFICATION in output.parameters:
            classification = _int_parameter(output.parameters, CLASSIFICATION, 0, num_classes)
        wanted.append(WantedOutput(output.name, classification))
    return tuple(wanted) or tuple(WantedOutput(name) for name in OUTPUTS)


def _int_parameter(
    parameters: Mapping[str, pb.InferParameter], name: str, default: int, most: int
) -> int:
    if name not in parameters:
        return default
    parameter = parameters[name]
    kind = parameter.WhichOneof("parameter_choice")
    value = getattr(parameter, kind) if kind in ("int64_param", "uint64_param") else None
    if value is None or not 1 <= value <= most:
        shown = getattr(parameter, kind) if kind else "nothing"
        raise InvalidArgument(f"parameter {name} must be an integer in [1, {most}]; got {shown!r}")
    return int(value)


def _expect_datatype(tensor: pb.ModelInferRequest.InferInputTensor, datatype: str) -> None:
    if tensor.datatype != datatype:
        raise InvalidArgument(
            f"input {tensor.name} takes datatype {datatype}; got {quoted(tensor.datatype)}"
        )


def _split_bytes(raw: bytes) -> list[bytes]:
    """BYTES elements from raw contents: each a 4-byte little-endian length, then the bytes."""
    elements: list[bytes] = []
    offset, view = 0, memoryview(raw)
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise InvalidArgument("raw BYTES contents end inside an element's length prefix")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            raise InvalidArgument(
                f"raw BYTES element {len(elements)} claims {length} bytes; "
                f"only {len(raw) - offset} remain"
            )
        elements.append(bytes(view[offset : offset + length]))
        offset += length
    return elements


def _bytes_tensor(elements: Iterable[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(element)) + element for element in elements)


def _shape(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"
