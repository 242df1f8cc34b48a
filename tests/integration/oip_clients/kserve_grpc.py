"""The kserve SDK's InferenceGRPCClient against imgclf: liveness, readiness, inference with
BYTES and FP32 inputs, and an error. (The SDK's gRPC client has no metadata calls.)"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import numpy as np
from common import MODEL, arguments, emit, preprocessed, top1
from kserve import InferenceGRPCClient, InferInput, InferRequest


def outputs(response: Any) -> dict[str, Any]:
    return {output.name: output.as_numpy() for output in response.outputs}


async def main() -> None:
    target, images = arguments()
    client = InferenceGRPCClient(target)
    seen: dict[str, Any] = {
        "live": await client.is_server_live(),
        "ready": await client.is_server_ready(),
        "model_ready": await client.is_model_ready(MODEL),
    }

    encoded = InferInput("IMAGE", [len(images)], "BYTES")
    encoded.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    response = await client.infer(InferRequest(model_name=MODEL, infer_inputs=[encoded]))
    seen["bytes"] = {name: value[:, 0] for name, value in outputs(response).items()}
    seen["bytes"]["LABELS"] = top1(outputs(response)["LABELS"])

    pixels = np.stack([preprocessed(image) for image in images])
    raw = InferInput("PIXELS", list(pixels.shape), "FP32")
    raw.set_data_from_numpy(pixels, binary_data=True)
    response = await client.infer(InferRequest(model_name=MODEL, infer_inputs=[raw]))
    seen["fp32_top1"] = top1(outputs(response)["LABELS"])

    bad = InferInput("IMAGE", [2], "BYTES")
    bad.set_data_from_numpy(np.array([images[0], b"no"], dtype=np.object_), binary_data=True)
    try:
        await client.infer(InferRequest(model_name=MODEL, infer_inputs=[bad]))
        seen["bad_image"] = ["OK", ""]
    except grpc.aio.AioRpcError as exc:
        seen["bad_image"] = [exc.code().name, exc.details()]
    await client.close()
    emit(seen)


if __name__ == "__main__":
    asyncio.run(main())
