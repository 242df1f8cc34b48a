"""ModelInfer calls of the Open Inference Protocol with the server's own generated stub, for
tests in this process (the third-party clients cannot be imported here: test_open_inference)."""

from __future__ import annotations

import struct

import grpc

from imgclf_serve.inference import grpc_service_pb2 as oip_pb
from imgclf_serve.inference import grpc_service_pb2_grpc as oip_grpc


def model_infer(
    target: str, images: list[bytes], model: str = "efficientnet-lite0"
) -> oip_pb.ModelInferResponse:
    """Encoded `images` as one BYTES [N] input, raw contents, as tritonclient sends them."""
    request = oip_pb.ModelInferRequest(model_name=model, raw_input_contents=[raw_bytes(images)])
    request.inputs.add(name="IMAGE", datatype="BYTES", shape=[len(images)])
    with grpc.insecure_channel(target) as channel:
        response: oip_pb.ModelInferResponse = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request, timeout=120
        )
    return response


def raw_bytes(elements: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def labels(response: oip_pb.ModelInferResponse) -> list[str]:
    """The LABELS output, as "label" strings row by row."""
    index = [output.name for output in response.outputs].index("LABELS")
    raw, found, offset = response.raw_output_contents[index], [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        found.append(raw[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    return found
