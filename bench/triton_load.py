"""The Triton side of the load generator: bench.loadgen driving tritonclient's asyncio gRPC
client (which needs .venv-triton's protobuf). Prints one LoadResult as JSON.

    python -m bench.triton_load GRPC_PORT CONCURRENCY DURATION_S [IMAGES_PER_CALL] [RATE_PER_S]

With RATE_PER_S, calls start at that fixed rate (open loop) and CONCURRENCY is ignored.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import tritonclient.grpc.aio as triton

from bench.loadgen import run_load, run_open_loop

IMAGES = [
    (Path(__file__).parents[1] / "tests/data/images" / name).read_bytes()
    for name in ("kitten_small.jpg", "tiger.jpg", "strawberry.jpg")
]


async def main(
    port: int, concurrency: int, duration: float, per_call: int, rate: float | None
) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{port}")
    cycle = itertools.cycle(IMAGES)

    async def call() -> int:
        tensor = triton.InferInput("image", [per_call, 1], "BYTES")
        rows = [[next(cycle)] for _ in range(per_call)]
        tensor.set_data_from_numpy(np.array(rows, dtype=np.object_))
        await client.infer("efficientnet_lite0", [tensor], client_timeout=120)
        return per_call

    if rate is None:
        result = await run_load(
            "triton",
            f"infer({per_call}) c={concurrency}",
            call,
            concurrency=concurrency,
            images_per_call=per_call,
            duration_s=duration,
        )
    else:
        result = await run_open_loop(
            "triton",
            f"infer({per_call}) at {rate}/s",
            call,
            rate_per_s=rate,
            images_per_call=per_call,
            duration_s=duration,
        )
    await client.close()
    print(json.dumps(result.as_dict()))


if __name__ == "__main__":
    port, concurrency, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    per_call = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else None
    asyncio.run(main(port, concurrency, duration, per_call, rate))
