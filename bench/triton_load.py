"""The Triton side of the load generator: bench.loadgen driving tritonclient's asyncio gRPC
client (which needs .venv-triton's protobuf). Prints one LoadResult as JSON.

    python -m bench.triton_load GRPC_PORT CONCURRENCY DURATION_S
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import tritonclient.grpc.aio as triton

from bench.loadgen import run_load

IMAGES = [
    (Path(__file__).parents[1] / "tests/data/images" / name).read_bytes()
    for name in ("kitten_small.jpg", "tiger.jpg", "strawberry.jpg")
]


async def main(port: int, concurrency: int, duration: float) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{port}")
    cycle = itertools.cycle(IMAGES)

    async def call() -> int:
        tensor = triton.InferInput("image", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[next(cycle)]], dtype=np.object_))
        await client.infer("efficientnet_lite0", [tensor], client_timeout=120)
        return 1

    result = await run_load(
        "triton",
        f"infer c={concurrency}",
        call,
        concurrency=concurrency,
        images_per_call=1,
        duration_s=duration,
    )
    await client.close()
    print(json.dumps(result.as_dict()))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
