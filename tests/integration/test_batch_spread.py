"""ClassifyBatch spreads any number of images over all replicas, in request order."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from tests.conftest import SEED_TOP1
from tests.integration.conftest import INGRESS_REPLICAS, NEURON_CORES, replicas_of

pytestmark = pytest.mark.integration

ORDER = ["tiger.jpg", "strawberry.jpg", "kitten_small.jpg", "tiger.jpg", "kitten_small.jpg"]


@pytest.mark.parametrize("count", [1, 3, 4, 8, 13, 64])
def test_spread_is_even_complete_and_ordered(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes], count: int
) -> None:
    names = [ORDER[i % len(ORDER)] for i in range(count)]
    request = pb.ClassifyBatchRequest(images=[seed_images[name] for name in names])
    limit = math.ceil(count / NEURON_CORES)
    used = set()
    # Each ingress replica rotates its own first slot; after INGRESS_REPLICAS x NEURON_CORES
    # calls one of them has made NEURON_CORES calls (pigeonhole), covering every replica. A
    # one-image call is routed by load like Classify (the less busy of two random replicas):
    # 40 calls miss one of 4 idle replicas with a chance of 4 x (3/4)^40, about 4e-5.
    calls = 40 if count == 1 else INGRESS_REPLICAS * NEURON_CORES if count < NEURON_CORES else 4
    for _ in range(calls):
        response = stub.ClassifyBatch(request, timeout=120)
        assert len(response.items) == count
        assert [item.predictions[0].label for item in response.items] == [
            SEED_TOP1[name] for name in names
        ]
        per_replica = Counter(replicas_of(response))
        assert max(per_replica.values()) <= limit, per_replica
        assert len(per_replica) == min(count, NEURON_CORES), per_replica
        used |= set(per_replica)
    if count < NEURON_CORES:
        # Small batches start on a different replica each call, so all get work.
        assert len(used) == NEURON_CORES


def test_thirteen_splits_4_3_3_3(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    request = pb.ClassifyBatchRequest(images=[seed_images["tiger.jpg"]] * 13)
    for _ in range(3):
        sizes = sorted(Counter(replicas_of(stub.ClassifyBatch(request, timeout=120))).values())
        assert sizes == [3, 3, 3, 4]


def test_concurrent_batches_each_spread(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    request = pb.ClassifyBatchRequest(images=[seed_images["strawberry.jpg"]] * 8)
    futures = [stub.ClassifyBatch.future(request, timeout=120) for _ in range(6)]
    for future in futures:
        response = future.result()
        assert sorted(Counter(replicas_of(response)).values()) == [2, 2, 2, 2]
        assert {item.predictions[0].label for item in response.items} == {"strawberry"}
