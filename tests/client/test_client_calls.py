"""Classify, ClassifyBatch, ListModels and Check through the sync client, with typed results."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import pytest
from PIL import Image

from imgclf import (
    Backend,
    Classification,
    ClassifierClient,
    DeviceKind,
    HealthStatus,
    InvalidImage,
    ItemError,
)
from imgclf.images import image_bytes
from tests.client.fake_server import FakeServer


def test_classify_returns_a_frozen_typed_result(client: ClassifierClient) -> None:
    result = client.classify(b"tabby", top_k=3)
    assert result.ok and result.model == "fake-model"
    assert result.top.label == "tabby" and result.top.probability == 1.0
    assert result.as_dict() == {"tabby": 1.0}
    assert result.served_by is not None
    assert result.served_by.device_kind is DeviceKind.NEURON_CORE
    assert result.served_by.core_ids == (3,) and result.served_by.backend is Backend.CPU
    with pytest.raises(AttributeError):
        result.model = "other"  # type: ignore[misc]


def test_classify_accepts_paths_files_and_pil_images(
    client: ClassifierClient, tmp_path: Path
) -> None:
    path = tmp_path / "cat.bin"
    path.write_bytes(b"from-a-file")
    assert client.classify(path).top.label == "from-a-file"
    assert client.classify(str(path)).top.label == "from-a-file"
    with path.open("rb") as handle:
        assert client.classify(handle).top.label == "from-a-file"
    assert client.classify(bytearray(b"ba")).top.label == "ba"

    pil = Image.new("CMYK", (4, 3), (0, 0, 0, 0))  # a mode PNG can't hold: sent as RGB
    assert client.classify(pil).top.label[1:4] == "PNG"  # the fake echoes the bytes it got
    with Image.open(io.BytesIO(image_bytes(pil))) as decoded:
        assert (decoded.format, decoded.size, decoded.mode) == ("PNG", (4, 3), "RGB")


def test_classify_refuses_what_is_not_an_image_input(client: ClassifierClient) -> None:
    with pytest.raises(TypeError, match="cannot send a int"):
        client.classify(42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        client.classify(Path("/no/such/image.jpg"))
    with pytest.raises(ValueError, match="top_k"):
        client.classify(b"x", top_k=0)


def test_batch_results_are_in_order_and_a_bad_image_fails_alone(
    client: ClassifierClient, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jpg"
    results = client.classify_batch([b"a", b"bad-1", missing, b"d"])
    assert [r.ok for r in results] == [True, False, False, True]
    assert [r.top.label for r in results if isinstance(r, Classification)] == ["a", "d"]
    server_error, local_error = results[1], results[2]
    assert isinstance(server_error, ItemError) and isinstance(local_error, ItemError)
    assert server_error.index == 1 and server_error.reason == "INVALID_IMAGE"
    assert server_error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert server_error.message.startswith("image 1: ")
    assert isinstance(server_error.exception(), InvalidImage)
    assert local_error.index == 2 and local_error.reason == "UNREADABLE_FILE"
    assert "No such file" in local_error.message


def test_models_and_health(client: ClassifierClient, fake: FakeServer) -> None:
    models = client.models()
    assert models.default_model == "fake-model"
    assert models.get("fake-model") is not None and models.get("nope") is None
    assert models.limits.max_images_per_batch == 256
    assert client.health() is HealthStatus.SERVING
    fake.servicer.health_status = 2  # NOT_SERVING
    assert client.health() is HealthStatus.NOT_SERVING


def test_a_passed_channel_is_used_and_left_open(fake: FakeServer) -> None:
    with grpc.insecure_channel(fake.target) as channel:
        with ClassifierClient(channel=channel) as client:
            assert client.classify(b"x").top.label == "x"
        # still usable: the client did not close a channel it did not create
        assert ClassifierClient(channel=channel).classify(b"y").top.label == "y"


def test_the_target_defaults_to_the_environment(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMGCLF_TARGET", fake.target)
    with ClassifierClient() as client:
        assert client.classify(b"from-env").top.label == "from-env"
