"""Client-side splitting of large batches: within the server's limits, concurrent, in order."""

from __future__ import annotations

import grpc
import pytest

from imgclf import Classification, ClassifierClient, InternalError, ItemError, ModelNotFound
from tests.client.fake_server import FakeServer


def labels(results: list) -> list[str]:  # type: ignore[type-arg]
    return [r.top.label if isinstance(r, Classification) else f"error:{r.index}" for r in results]


def test_a_batch_over_the_server_limit_is_split_evenly_and_reassembled(fake: FakeServer) -> None:
    fake.servicer.max_images_per_batch = 3
    fake.servicer.gate = 2  # calls answered only once this many overlap
    images = [f"img-{i}".encode() for i in range(10)]
    with ClassifierClient(fake.target) as client:
        results = client.classify_batch(images)
        assert labels(results) == [f"img-{i}" for i in range(10)]
        client.classify_batch(images)  # the limit is asked once per client
    sizes = [call.images for call in fake.servicer.calls_to("ClassifyBatch")]
    assert sizes[:4] == [3, 3, 2, 2]
    assert len(fake.servicer.calls_to("ListModels")) == 1
    assert fake.servicer.max_in_flight == fake.servicer.gate


def test_concurrency_bounds_the_calls_in_flight(fake: FakeServer) -> None:
    fake.servicer.gate = 3
    images = [f"{i}".encode() for i in range(12)]
    with ClassifierClient(fake.target, max_images_per_call=1, concurrency=3) as client:
        assert labels(client.classify_batch(images)) == [f"{i}" for i in range(12)]
    assert fake.servicer.max_in_flight == 3
    assert fake.servicer.calls_to("ListModels") == []  # the limit was given


def test_a_batch_is_split_to_fit_the_message_size(fake: FakeServer) -> None:
    images = [bytes([65 + i]) * 3000 for i in range(6)]
    with ClassifierClient(fake.target, max_message_bytes=8000, max_images_per_call=100) as client:
        results = client.classify_batch([*images, b"Z" * 9000])
    assert [r.ok for r in results] == [True] * 6 + [False]
    sizes = [call.images for call in fake.servicer.calls_to("ClassifyBatch")]
    assert sizes == [2, 2, 2]  # each call under 8000 bytes
    too_big = results[-1]
    assert isinstance(too_big, ItemError) and too_big.reason == "IMAGE_TOO_LARGE"
    assert too_big.index == 6 and "max_message_bytes=8000" in too_big.message


def test_item_errors_name_the_callers_index_after_a_split(fake: FakeServer) -> None:
    images = [b"a", b"b", b"c", b"bad", b"e"]
    with ClassifierClient(fake.target, max_images_per_call=2) as client:
        results = client.classify_batch(images)
    error = results[3]
    assert isinstance(error, ItemError)
    assert error.index == 3 and error.message == "image 3: cannot decode"


def test_classify_iter_streams_a_generator_in_order(fake: FakeServer) -> None:
    consumed = []

    def images():  # type: ignore[no-untyped-def]
        for i in range(25):
            consumed.append(i)
            yield f"s{i}".encode()

    with ClassifierClient(fake.target, concurrency=2) as client:
        stream = client.classify_iter(images(), chunk_size=4)
        first = next(stream)
        assert first.ok and first.top.label == "s0"
        assert len(consumed) <= (2 + 1) * 4  # lazily: the chunks in flight and one ahead
        rest = list(stream)
    assert labels([first, *rest]) == [f"s{i}" for i in range(25)]
    assert [call.images for call in fake.servicer.calls_to("ClassifyBatch")] == [4] * 6 + [1]


def test_empty_batch_makes_no_call(fake: FakeServer) -> None:
    with ClassifierClient(fake.target, max_images_per_call=4) as client:
        assert client.classify_batch([]) == []
        assert list(client.classify_iter([])) == []
    assert fake.servicer.calls_to("ClassifyBatch") == []


def test_a_call_level_failure_raises_from_classify_batch(fake: FakeServer) -> None:
    client = ClassifierClient(fake.target, max_images_per_call=1)
    with client, pytest.raises(ModelNotFound):
        client.classify_batch([b"a", b"b", b"c"], model="missing")


def test_a_call_level_failure_raises_from_classify_iter(fake: FakeServer) -> None:
    fake.servicer.fail_next = [grpc.StatusCode.INTERNAL]
    client = ClassifierClient(fake.target, max_images_per_call=1)
    with client, pytest.raises(InternalError, match="injected INTERNAL"):
        list(client.classify_iter([b"a"] * 5, chunk_size=1))
