"""classifier.py, spread.py and readiness.py: the ingress's request path against fake
deployment handles (tests/unit/fake_handles.py; no Ray cluster), the way the gRPC methods use
it. The real cluster runs it in tests/integration."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError

from imgclf_serve.classifier import Classifier, ServedModel
from imgclf_serve.errors import (
    ClassifyError,
    Code,
    InvalidArgument,
    ModelNotFound,
    Overloaded,
)
from imgclf_serve.failures import as_classify_error
from imgclf_serve.readiness import Readiness
from imgclf_serve.results import ItemError, ItemResult
from imgclf_serve.settings import AdmissionConfig, LimitsConfig
from imgclf_serve.spread import item_codes, reassemble, split
from tests.unit.fake_handles import FakeHandle, ok

REPLICAS = 4


def classifier(behaviour, **limits: int) -> tuple[Classifier, FakeHandle]:  # type: ignore[no-untyped-def]
    handle = FakeHandle(behaviour)
    served = ServedModel(replicas=REPLICAS, num_classes=1000, input_size=224)
    return (
        Classifier(
            {"lite0": handle},
            {"lite0": served},
            "lite0",
            LimitsConfig(**limits),
            AdmissionConfig(ingress_max_images=300),
        ),
        handle,
    )


async def echo(images: list[bytes], slot: int | None) -> list[ItemResult]:
    return [ok(image) for image in images]


def test_a_batch_is_spread_over_every_replica_and_answered_in_order() -> None:
    spread, handle = classifier(echo)
    images = [str(n).encode() for n in range(10)]
    results = asyncio.run(spread.classify_images("lite0", images, 5))
    assert [r.predictions[0].label for r in results] == [str(n) for n in range(10)]
    shares = handle.classify_share.calls
    assert sorted(len(images) for images, _ in shares) == [2, 2, 3, 3]
    slots = sorted(slot for _, slot in shares if slot is not None)
    assert slots == list(range(slots[0], slots[0] + REPLICAS))  # consecutive: distinct replicas


def test_images_refused_before_sending_fail_alone_and_go_in_no_share() -> None:
    spread, handle = classifier(echo, max_image_bytes=3)
    results = asyncio.run(spread.classify_images("lite0", [b"a", b"", b"toolong", b"b"], 5))
    assert item_codes(results) == ["OK", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "OK"]
    assert "empty" in results[1].error.message  # type: ignore[union-attr]
    sent = sorted(image for images, _ in handle.classify_share.calls for image in images)
    assert sent == [b"a", b"b"]


def test_one_image_is_routed_by_load_like_classify() -> None:
    spread, handle = classifier(echo)
    asyncio.run(spread.classify_images("lite0", [b"a"], 5))
    assert handle.classify_share.calls == [([b"a"], None)]


def test_preprocessed_arrays_travel_as_they_are() -> None:
    seen: list[object] = []

    async def record(images: list[bytes], slot: int | None) -> list[ItemResult]:
        seen.extend(images)
        return [ok(b"x") for _ in images]

    spread, _ = classifier(record)
    arrays = [np.zeros((3, 224, 224), np.float32) for _ in range(2)]
    asyncio.run(spread.classify_images("lite0", arrays, 5))
    assert all(isinstance(a, np.ndarray) for a in seen) and len(seen) == 2


def test_a_share_that_fails_as_a_whole_fails_only_its_images() -> None:
    async def one_share_shed(images: list[bytes], slot: int | None) -> list[ItemResult]:
        if b"3" in images:
            raise BackPressureError(num_queued_requests=64, max_queued_requests=64)
        return [ok(image) for image in images]

    spread, _ = classifier(one_share_shed)
    results = asyncio.run(spread.classify_images("lite0", [b"1", b"2", b"3", b"4"], 5))
    assert item_codes(results) == ["OK", "OK", "RESOURCE_EXHAUSTED", "OK"]


def test_a_call_whose_every_image_was_shed_fails_as_a_whole() -> None:
    async def shed(images: list[bytes], slot: int | None) -> list[ItemResult]:
        return [ItemResult(error=ItemError.from_exception(Overloaded("replica full")))] * len(
            images
        )

    spread, _ = classifier(shed)
    with pytest.raises(Overloaded, match="replica full"):
        asyncio.run(spread.classify_images("lite0", [b"1", b"2"], 5))


def test_limits_models_and_top_k_are_checked_before_any_share_is_sent() -> None:
    spread, handle = classifier(echo, max_images_per_batch=2, max_request_bytes=4)
    with pytest.raises(InvalidArgument, match="3 images in one call, over the limit of 2"):
        asyncio.run(spread.classify_images("lite0", [b"1", b"2", b"3"], 5))
    with pytest.raises(InvalidArgument, match="5 bytes of images in one call"):
        asyncio.run(spread.classify_images("lite0", [b"12", b"345"], 5))
    with pytest.raises(InvalidArgument, match="at least one image"):
        asyncio.run(spread.classify_images("lite0", [], 5))
    with pytest.raises(ModelNotFound, match="deployed models: lite0"):
        spread.resolve("resnet152", 0)
    with pytest.raises(InvalidArgument, match=r"top_k must be in \[1, 1000\]"):
        spread.resolve("", 1001)
    assert spread.resolve("", 0) == ("lite0", 5)
    assert handle.classify_share.calls == []


def test_classify_raises_the_images_own_error() -> None:
    async def undecodable(images: list[bytes], slot: int | None) -> list[ItemResult]:
        error = ItemError(Code.INVALID_ARGUMENT, InvalidArgument.reason, "cannot decode")
        return [ItemResult(error=error)]

    spread, _ = classifier(undecodable)
    with pytest.raises(ClassifyError, match="cannot decode") as raised:
        asyncio.run(spread.classify("lite0", b"x", 5))
    assert raised.value.code is Code.INVALID_ARGUMENT


def test_reassemble_maps_a_dead_replica_to_unavailable_for_its_share() -> None:
    parts = split([b"a", b"b", b"c"], 2, lambda image: None)
    replies = [[ok(b"a"), ok(b"b")], RayActorError()]
    results = reassemble(parts, replies, lambda exc: as_classify_error(exc, "test"))
    assert item_codes(results) == ["OK", "OK", "UNAVAILABLE"]


def test_readiness_counts_warm_replicas_reads_the_controller_at_most_every_second() -> None:
    now = [0.0]
    reads: list[dict[str, int]] = [{"lite0": 1, "resnet50": 0}, {"lite0": 2, "resnet50": 1}]

    async def read_running() -> dict[str, int]:
        if not reads:
            raise TimeoutError("the controller did not answer")
        return reads.pop(0)

    readiness = Readiness({"lite0": 2, "resnet50": 1}, read_running, clock=lambda: now[0])

    async def scenario() -> list[bool]:
        seen = [await readiness.ready(["lite0"]), await readiness.ready(["resnet50"])]
        now[0] = 0.5  # within max_age_s: the same answer, no second read
        seen.append(await readiness.ready(["lite0"]))
        now[0] = 2.0
        seen.append(await readiness.ready(["lite0", "resnet50"]))
        now[0] = 4.0  # the controller fails: the last counts stand
        seen.append(await readiness.ready(["lite0", "resnet50"]))
        return seen

    assert asyncio.run(scenario()) == [False, False, False, True, True]


@pytest.mark.parametrize(("live", "expected_shares"), [(2, [2, 2, 3, 3]), (6, [1, 1, 2, 2, 2, 2])])
def test_a_batch_follows_the_replicas_serve_reports_running(
    live: int, expected_shares: list[int]
) -> None:
    """With autoscaling the replica count grows past the count deployed (its minimum, 4): a
    batch is cut for the replicas running now; never for fewer than deployed (a count read
    while the last of them started)."""
    handle = FakeHandle(echo)
    counts = {"lite0": live}
    spread = Classifier(
        {"lite0": handle},
        {"lite0": ServedModel(replicas=REPLICAS, num_classes=1000, input_size=224)},
        "lite0",
        LimitsConfig(),
        AdmissionConfig(ingress_max_images=300),
        live_replicas=lambda: counts,
    )
    images = [str(n).encode() for n in range(10)]
    results = asyncio.run(spread.classify_images("lite0", images, 5))
    assert [r.predictions[0].label for r in results] == [str(n) for n in range(10)]
    assert sorted(len(images) for images, _ in handle.classify_share.calls) == expected_shares
    counts.clear()  # nothing reported (the controller not read yet): as deployed
    handle.classify_share.calls.clear()
    asyncio.run(spread.classify_images("lite0", images, 5))
    assert len(handle.classify_share.calls) == REPLICAS


def test_readiness_refreshes_in_the_background_for_the_request_path() -> None:
    reads = []

    async def read() -> dict[str, int]:
        reads.append(1)
        return {"lite0": len(reads)}

    async def scenario() -> int:
        readiness = Readiness({"lite0": 1}, read, max_age_s=0.0)
        task = asyncio.create_task(readiness.refresh_forever(period_s=0.01))
        await asyncio.sleep(0.1)
        task.cancel()
        return readiness.last_running()["lite0"]

    assert asyncio.run(scenario()) >= 3  # read again and again, without a caller waiting
