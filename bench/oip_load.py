"""The Open Inference Protocol load generator: imgclf_tools.loadgen driving tritonclient's asyncio
gRPC client (which needs .venv-triton's protobuf) against any server that speaks the protocol,
Triton or imgclf, with the same requests: N encoded seed images as one BYTES [N,1] input.
Prints one LoadResult as JSON.

    python -m bench.oip_load GRPC_PORT CONCURRENCY DURATION_S [IMAGES_PER_CALL] [RATE_PER_S]
        [--system triton --model efficientnet_lite0 --input image]

With RATE_PER_S, calls start at that fixed rate (open loop) and CONCURRENCY is ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from pathlib import Path

import numpy as np
import tritonclient.grpc.aio as triton

from imgclf_tools.loadgen import run_load, run_open_loop

IMAGES = [
    (Path(__file__).parents[1] / "tests/data/images" / name).read_bytes()
    for name in ("kitten_small.jpg", "tiger.jpg", "strawberry.jpg")
]


async def main(args: argparse.Namespace) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{args.port}")
    cycle = itertools.cycle(IMAGES)
    per_call = args.per_call

    async def call() -> int:
        tensor = triton.InferInput(args.input, [per_call, 1], "BYTES")
        rows = [[next(cycle)] for _ in range(per_call)]
        tensor.set_data_from_numpy(np.array(rows, dtype=np.object_))
        await client.infer(args.model, [tensor], client_timeout=120)
        return per_call

    if args.rate is None:
        result = await run_load(
            args.system,
            f"infer({per_call}) c={args.concurrency}",
            call,
            concurrency=args.concurrency,
            images_per_call=per_call,
            duration_s=args.duration,
        )
    else:
        result = await run_open_loop(
            args.system,
            f"infer({per_call}) at {args.rate}/s",
            call,
            rate_per_s=args.rate,
            images_per_call=per_call,
            duration_s=args.duration,
        )
    await client.close()
    print(json.dumps(result.as_dict()))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.oip_load")
    parser.add_argument("port", type=int)
    parser.add_argument("concurrency", type=int)
    parser.add_argument("duration", type=float)
    parser.add_argument("per_call", type=int, nargs="?", default=1)
    parser.add_argument("rate", type=float, nargs="?", default=None)
    parser.add_argument("--system", default="triton", help="the name the result carries")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--input", default="image")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(arguments()))
