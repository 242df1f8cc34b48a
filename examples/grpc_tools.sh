#!/usr/bin/env bash
# imgclf from generic gRPC tools, no imgclf code and no .proto file: grpcurl finds the API
# through server reflection, grpc_health_probe is the probe Kubernetes users already run.
#   TARGET=127.0.0.1:9000 examples/grpc_tools.sh [image]
# tests/integration/test_grpc_tools.py runs this script when both tools are installed.
set -euo pipefail
TARGET=${TARGET:-127.0.0.1:9000}
IMAGE=${1:-tests/data/images/tiger.jpg}

grpcurl -plaintext "$TARGET" list
grpcurl -plaintext "$TARGET" describe imgclf.v1.ClassifyRequest
# JSON in, JSON out: `bytes` fields are base64, field names as in the proto.
printf '{"image": "%s", "top_k": 3}' "$(base64 -w0 "$IMAGE")" \
    | grpcurl -plaintext -d @ "$TARGET" imgclf.v1.ClassifierService/Classify
grpc_health_probe -addr="$TARGET"
grpc_health_probe -addr="$TARGET" -service=efficientnet-lite0
