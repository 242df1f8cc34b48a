"""Failed calls: the exception tree, retries done by gRPC, deadlines, metadata."""

from __future__ import annotations

import grpc
import pytest

from imgclf import (
    USE_CLIENT_DEFAULT,
    ClassifierClient,
    DeadlineExceeded,
    ImgclfError,
    InternalError,
    InvalidArgument,
    InvalidImage,
    ModelNotFound,
    NotFound,
    Overloaded,
    RetryPolicy,
    Unavailable,
)
from tests.client.fake_server import FakeServer

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
        (grpc.StatusCode.INTERNAL, InternalError),
        (grpc.StatusCode.UNKNOWN, InternalError),
        (grpc.StatusCode.PERMISSION_DENIED, ImgclfError),
    ],
)
def test_each_status_code_raises_its_exception(
    client: ClassifierClient, fake: FakeServer, code: grpc.StatusCode, expected: type
) -> None:
    fake.servicer.fail_next = [code]
    with pytest.raises(expected) as raised:
        client.classify(b"x")
    error = raised.value
    assert type(error) is expected
    assert error.code is code and error.message == f"injected {code.name}"
    assert isinstance(error.__cause__, grpc.RpcError)
    # the id the call carried, so a user can find the call in the server's logs
    assert error.request_id == fake.servicer.calls[-1].metadata["request_id"]
    assert error.request_id in str(error)


def test_reasons_pick_the_finer_exception(client: ClassifierClient) -> None:
    with pytest.raises(InvalidImage) as bad_image:
        client.classify(b"bad image")
    assert bad_image.value.reason == "INVALID_IMAGE"
    assert "cannot decode" in str(bad_image.value)
    with pytest.raises(ModelNotFound) as missing:
        client.classify(b"x", model="missing")
    assert missing.value.code is grpc.StatusCode.NOT_FOUND
    with pytest.raises(ModelNotFound):
        client.classify_batch([b"x"], model="missing")


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_gRPC_retries_unavailable_and_overloaded(fake: FakeServer, code: grpc.StatusCode) -> None:
    fake.servicer.fail_next = [code, code]
    with ClassifierClient(fake.target, retry=FAST_RETRY) as client:
        assert client.classify(b"x").top.label == "x"
    attempts = fake.servicer.calls_to("Classify")
    assert len(attempts) == 3
    assert len({call.metadata["request_id"] for call in attempts}) == 1  # one call, retried


def test_retries_give_up_after_max_attempts(fake: FakeServer) -> None:
    fake.servicer.fail_next = [grpc.StatusCode.RESOURCE_EXHAUSTED] * 10
    with ClassifierClient(fake.target, retry=FAST_RETRY) as client, pytest.raises(Overloaded):
        client.classify(b"x")
    assert len(fake.servicer.calls_to("Classify")) == 4


def test_retries_are_throttled_when_most_calls_fail(fake: FakeServer) -> None:
    """gRPC's retryThrottling: a failing server gets each call about once, not 4 times."""
    fake.servicer.fail_next = [grpc.StatusCode.UNAVAILABLE] * 200
    with ClassifierClient(fake.target, retry=FAST_RETRY) as client:
        for _ in range(20):
            with pytest.raises(Unavailable):
                client.classify(b"x")
    attempts = len(fake.servicer.calls_to("Classify"))
    # 10 tokens: retries stop once 5 failed attempts took theirs (without throttling, 80).
    assert 20 < attempts <= 26, attempts


def test_a_large_batch_is_retried_too(fake: FakeServer) -> None:
    """gRPC retries only what fits its retry buffer (256 KiB by default)."""
    fake.servicer.fail_next = [grpc.StatusCode.UNAVAILABLE]
    images = [bytes([65 + i]) * 100_000 for i in range(8)]  # 800 kB in one call
    with ClassifierClient(fake.target, retry=FAST_RETRY, max_images_per_call=8) as client:
        results = client.classify_batch(images)
    assert all(result.ok for result in results)
    assert len(fake.servicer.calls_to("ClassifyBatch")) == 2


def test_other_codes_and_retry_none_are_not_retried(fake: FakeServer) -> None:
    fake.servicer.fail_next = [grpc.StatusCode.INVALID_ARGUMENT]
    with ClassifierClient(fake.target, retry=FAST_RETRY) as client, pytest.raises(InvalidArgument):
        client.classify(b"x")
    fake.servicer.fail_next = [grpc.StatusCode.UNAVAILABLE]
    with ClassifierClient(fake.target, retry=None) as client, pytest.raises(Unavailable):
        client.classify(b"x")
    assert len(fake.servicer.calls_to("Classify")) == 2


def test_deadlines_default_per_call_and_none(fake: FakeServer) -> None:
    with ClassifierClient(fake.target, timeout=7.0) as client:
        client.classify(b"x")
        client.classify(b"x", timeout=USE_CLIENT_DEFAULT)
        client.classify(b"x", timeout=2.0)
        client.classify(b"x", timeout=None)
    remaining = [call.time_remaining for call in fake.servicer.calls_to("Classify")]
    assert 6 < remaining[0] < 7.5 and 6 < remaining[1] < 7.5  # gRPC rounds deadlines up
    assert 1 < remaining[2] < 2.5
    assert remaining[3] is None


def test_a_deadline_shorter_than_the_server_raises_deadline_exceeded(fake: FakeServer) -> None:
    fake.servicer.delay_s = 2.0
    with ClassifierClient(fake.target) as client, pytest.raises(DeadlineExceeded) as raised:
        client.classify(b"x", timeout=0.1)
    assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_server_that_is_down_raises_unavailable() -> None:
    client = ClassifierClient("127.0.0.1:1", retry=FAST_RETRY, timeout=5)
    with client, pytest.raises(Unavailable) as raised:
        client.health()
    assert raised.value.request_id


def test_metadata_carries_request_id_application_and_extras(fake: FakeServer) -> None:
    with ClassifierClient(
        fake.target, application="imgclf", metadata=[("x-team", "vision")]
    ) as client:
        client.classify(b"x")
        client.classify(b"x")
    first, second = (call.metadata for call in fake.servicer.calls_to("Classify"))
    assert first["application"] == "imgclf" and first["x-team"] == "vision"
    assert first["request_id"] != second["request_id"]
    with pytest.raises(ValueError, match="lowercase"):
        ClassifierClient(fake.target, metadata=[("X-Team", "vision")])


def test_bad_options_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=9)
    with pytest.raises(ValueError, match="timeout"):
        ClassifierClient(timeout=0)
    with pytest.raises(ValueError, match="concurrency"):
        ClassifierClient(concurrency=0)
