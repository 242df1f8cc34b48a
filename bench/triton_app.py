"""Triton (PyTriton) serving the same function as imgclf: decode + preprocess + EfficientNet-Lite0
+ top-5, two model instances of one torch thread each (the same 2 CPU slots imgclf's two
replicas get), Triton's dynamic batcher (max batch 8, 2 ms queue delay).

Run by bench/triton.py in .venv-triton:  python -m bench.triton_app HTTP_PORT GRPC_PORT METRICS_PORT
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

from imgclf_serve.models import get_spec
from imgclf_serve.preprocess import ImageLimits, load_image

MODEL = "efficientnet-lite0"
INSTANCES = int(os.environ.get("TRITON_THREADS", "2"))
torch.set_num_threads(1)
spec = get_spec(MODEL)
limits = ImageLimits()


def make_infer():  # type: ignore[no-untyped-def]
    model = spec.build(None).eval()

    @batch
    def infer(image: np.ndarray) -> dict[str, np.ndarray]:
        pixels = np.stack([load_image(bytes(row[0]), spec.preprocess, limits) for row in image])
        with torch.inference_mode():
            probabilities = torch.softmax(model(torch.from_numpy(pixels)), dim=1).numpy()
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :5]
        return {
            "class_index": top.astype(np.int32),
            "probability": np.take_along_axis(probabilities, top, axis=1).astype(np.float32),
        }

    return infer


def main() -> None:
    http_port, grpc_port, metrics_port = (int(arg) for arg in sys.argv[1:4])
    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=http_port,
        grpc_address="127.0.0.1",
        grpc_port=grpc_port,
        metrics_port=metrics_port,
    )
    # No token on statistics and the rest (PyTriton's default): perf_analyzer reads them, and
    # this server listens on 127.0.0.1 only.
    open_endpoints = TritonSecurityConfig(restricted_endpoints=[])
    with Triton(config=config, security_config=open_endpoints) as triton:
        triton.bind(
            model_name="efficientnet_lite0",
            infer_func=[make_infer() for _ in range(INSTANCES)],
            inputs=[Tensor(name="image", dtype=bytes, shape=(1,))],
            outputs=[
                Tensor(name="class_index", dtype=np.int32, shape=(5,)),
                Tensor(name="probability", dtype=np.float32, shape=(5,)),
            ],
            config=ModelConfig(
                max_batch_size=8, batcher=DynamicBatcher(max_queue_delay_microseconds=2000)
            ),
            strict=True,
        )
        triton.serve()


if __name__ == "__main__":
    main()
