"""tritonclient.grpc.aio against imgclf: readiness, metadata, and concurrent inference with
BYTES and FP32 inputs."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import tritonclient.grpc.aio as triton
from common import MODEL, arguments, emit, preprocessed, top1


async def main() -> None:
    target, images = arguments()
    client = triton.InferenceServerClient(target)
    seen: dict[str, Any] = {"ready": await client.is_server_ready()}
    metadata = await client.get_model_metadata(MODEL, as_json=True)
    seen["inputs"] = [t["name"] for t in metadata["inputs"]]

    encoded = triton.InferInput("IMAGE", [len(images)], "BYTES")
    encoded.set_data_from_numpy(np.array(images, dtype=np.object_))
    pixels = np.stack([preprocessed(image) for image in images])
    raw = triton.InferInput("PIXELS", list(pixels.shape), "FP32")
    raw.set_data_from_numpy(pixels)
    results = await asyncio.gather(
        *(client.infer(MODEL, [encoded if n % 2 else raw]) for n in range(8))
    )
    seen["concurrent_top1"] = [top1(result.as_numpy("LABELS")) for result in results]
    await client.close()
    emit(seen)


if __name__ == "__main__":
    asyncio.run(main())
