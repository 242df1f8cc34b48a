"""Bad input through the real server: the status in ARCHITECTURE.md's error table, a message
a user can act on, no internals in it, and the server keeps serving (same replicas)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from tests.imagegen import png_bomb
from tests.integration.conftest import assert_no_internals, replicas_of

pytestmark = pytest.mark.integration

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def replicas_before(stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]) -> set[str]:
    request = pb.ClassifyBatchRequest(images=[seed_images["tiger.jpg"]] * 8)
    return set(replicas_of(stub.ClassifyBatch(request, timeout=120)))


def bad_classify_cases(
    seed: dict[str, bytes],
) -> list[tuple[str, pb.ClassifyRequest, grpc.StatusCode, str]]:
    tiger = seed["tiger.jpg"]
    request = pb.ClassifyRequest
    return [
        ("empty bytes", request(image=b""), INVALID, "image is empty (0 bytes)"),
        (
            "random bytes",
            request(image=bytes(range(256)) * 4),
            INVALID,
            "not a recognised image format",
        ),
        (
            "truncated JPEG",
            request(image=tiger[: len(tiger) // 3]),
            INVALID,
            "cannot decode JPEG image",
        ),
        (
            "text file",
            request(image=b"hello, I am a text file\n" * 20),
            INVALID,
            "not a recognised image format",
        ),
        (
            "over the pixel limit",
            request(image=png_bomb(8000, 6000)),
            INVALID,
            "8000x6000 = 48000000 pixels, over the limit of 40000000 pixels",
        ),
        (
            "top_k 1001",
            request(image=tiger, top_k=1001),
            INVALID,
            "top_k must be in [1, 1000] (0 means 5); got 1001",
        ),
        (
            "unknown model",
            request(image=tiger, model="vgg16"),
            grpc.StatusCode.NOT_FOUND,
            "model 'vgg16' is not deployed; deployed models: efficientnet-lite0, resnet50",
        ),
    ]


CASE_NAMES = [case[0] for case in bad_classify_cases({"tiger.jpg": b""})]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_classify_request(
    stub: pb_grpc.ClassifierServiceStub,
    seed_images: dict[str, bytes],
    replicas_before: set[str],
    case: str,
) -> None:
    _, request, code, message = next(c for c in bad_classify_cases(seed_images) if c[0] == case)
    with pytest.raises(grpc.RpcError) as failure:
        stub.Classify(request, timeout=60)
    assert failure.value.code() == code
    assert message in failure.value.details()
    assert_no_internals(failure.value.details())
    good = stub.Classify(pb.ClassifyRequest(image=seed_images["tiger.jpg"]), timeout=60)
    assert good.predictions[0].label == "tiger"


@pytest.mark.parametrize(("top_k", "returned"), [(0, 5), (1, 1), (5, 5), (1000, 1000)])
def test_top_k_range(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes], top_k: int, returned: int
) -> None:
    request = pb.ClassifyRequest(image=seed_images["strawberry.jpg"], top_k=top_k)
    response = stub.Classify(request, timeout=60)
    assert len(response.predictions) == returned
    assert response.predictions[0].label == "strawberry"


def expect_batch_error(call: Callable[[], object], code: grpc.StatusCode, message: str) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        call()
    assert failure.value.code() == code
    assert message in failure.value.details()
    assert_no_internals(failure.value.details())


def test_empty_batch(stub: pb_grpc.ClassifierServiceStub) -> None:
    expect_batch_error(
        lambda: stub.ClassifyBatch(pb.ClassifyBatchRequest(), timeout=60),
        INVALID,
        "ClassifyBatch needs at least one image; got none",
    )


def test_batch_over_the_limit(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    request = pb.ClassifyBatchRequest(images=[seed_images["kitten_small.jpg"]] * 257)
    expect_batch_error(
        lambda: stub.ClassifyBatch(request, timeout=60),
        INVALID,
        "257 images in one call, over the limit of 256; split the batch",
    )


def test_batch_for_an_unknown_model(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    request = pb.ClassifyBatchRequest(images=[seed_images["tiger.jpg"]], model="nope")
    expect_batch_error(
        lambda: stub.ClassifyBatch(request, timeout=60),
        grpc.StatusCode.NOT_FOUND,
        "model 'nope' is not deployed",
    )


def test_one_bad_image_fails_only_its_item(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    tiger, kitten = seed_images["tiger.jpg"], seed_images["kitten_small.jpg"]
    images = [tiger, kitten, tiger[:500], kitten, b"", tiger, b"GIF89a broken", kitten]
    response = stub.ClassifyBatch(pb.ClassifyBatchRequest(images=images), timeout=120)
    assert len(response.items) == len(images)
    failed = {i: item.error for i, item in enumerate(response.items) if item.HasField("error")}
    assert sorted(failed) == [2, 4, 6]
    assert failed[2].message.startswith("cannot decode JPEG image")
    assert failed[4].message == "image is empty (0 bytes)"
    assert failed[6].message.startswith("cannot decode")
    assert [failed[i].index for i in (2, 4, 6)] == [2, 4, 6]  # structured, not in the text
    for error in failed.values():
        assert error.code == INVALID.value[0]
        assert_no_internals(error.message)
    good = {
        i: item.predictions[0].label for i, item in enumerate(response.items) if i not in failed
    }
    assert good == {0: "tiger", 1: "tabby", 3: "tabby", 5: "tiger", 7: "tabby"}
    assert not response.items[4].HasField("served_by")  # refused before reaching a replica
    assert response.items[2].HasField("served_by")  # decoded (and refused) on a replica


def test_no_replica_restarted(
    stub: pb_grpc.ClassifierServiceStub,
    seed_images: dict[str, bytes],
    replicas_before: set[str],
) -> None:
    request = pb.ClassifyBatchRequest(images=[seed_images["tiger.jpg"]] * 8)
    assert set(replicas_of(stub.ClassifyBatch(request, timeout=120))) == replicas_before
