"""Classify images with a running imgclf server, using the generated imgclf.v1 stub.

    .venv/bin/python examples/classify.py --target 127.0.0.1:9000 tests/data/images/*.jpg

The client library and CLI (`imgclf classify ...`) come in clients/imgclf; this script shows
the raw gRPC API.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc

STATUS_NAME = {code.value[0]: code.name for code in grpc.StatusCode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--target", default="127.0.0.1:9000")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--model", default="")
    args = parser.parse_args()

    images = [path.read_bytes() for path in args.images]
    request = pb.ClassifyBatchRequest(images=images, model=args.model, top_k=args.top_k)
    with grpc.insecure_channel(args.target) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        try:
            response = stub.ClassifyBatch(request, timeout=60)
        except grpc.RpcError as exc:
            print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1

    failed = 0
    for path, item in zip(args.images, response.items, strict=True):
        if item.HasField("error"):
            failed += 1
            error = item.error
            print(f"{path.name}: {STATUS_NAME[error.code]}: image {error.index}: {error.message}")
            continue
        served = item.served_by
        cores = ",".join(map(str, served.core_ids)) or "-"
        print(
            f"{path.name}  ({response.model}; replica {served.replica_id}, "
            f"{pb.DeviceKind.Name(served.device_kind)} {cores}, {pb.Backend.Name(served.backend)})"
        )
        for prediction in item.predictions:
            print(f"  {prediction.probability:7.4f}  {prediction.label} ({prediction.class_index})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
