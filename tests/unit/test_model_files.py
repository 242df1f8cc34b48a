"""Model files on S3 (models/files.py), against a local S3-compatible server (moto's, in this
process, on 127.0.0.1): a model of your own whose TorchScript file and labels are objects is
fetched and loads; a missing object, a missing bucket and an unreachable store each fail with a
message naming the model and the URI; the config refuses what is neither a path nor
s3://bucket/key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from imgclf_serve.models.files import CACHE_ENV, ModelSourceError
from imgclf_serve.settings import ModelConfig
from imgclf_tools.ports import free_port
from tests.unit.test_custom_models import COLORS, Tiny


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """An empty local S3 at the endpoint the environment names; yields that endpoint."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        CACHE_ENV: str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield endpoint
    finally:
        server.stop()


def upload(tmp_path: Path) -> None:
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="models")
    model = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(model))
    client.upload_file(str(model), "models", "colors/v1/model.pt")
    client.put_object(Bucket="models", Key="colors/v1/labels.txt", Body="\n".join(COLORS))


def on_s3(torchscript: str, labels: str = "s3://models/colors/v1/labels.txt") -> ModelConfig:
    return ModelConfig(name="colors", source={"torchscript": torchscript}, labels=labels)


def test_a_model_and_its_labels_are_fetched_from_s3(s3: str, tmp_path: Path) -> None:
    upload(tmp_path)
    spec = on_s3("s3://models/colors/v1/model.pt").spec()
    assert spec.labels() == tuple(COLORS) and spec.num_classes == 10
    with torch.inference_mode():
        assert spec.build(None)(torch.zeros(1, 3, 224, 224)).shape == (1, 10)


def test_what_cannot_be_fetched_is_named(s3: str, tmp_path: Path) -> None:
    upload(tmp_path)
    with pytest.raises(ModelSourceError) as missing:
        on_s3("s3://models/colors/v2/model.pt").spec().build(None)
    assert str(missing.value) == (
        "model colors: cannot fetch torchscript s3://models/colors/v2/model.pt: no such object"
    )
    with pytest.raises(ModelSourceError, match=r"cannot fetch labels s3://elsewhere/l.txt: "):
        on_s3("s3://models/colors/v1/model.pt", labels="s3://elsewhere/l.txt").spec()


def test_an_unreachable_store_fails_with_a_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with pytest.raises(
        ModelSourceError, match=r"cannot fetch labels s3://models/l\.txt: Could not"
    ):
        on_s3("s3://models/m.pt", labels="s3://models/l.txt").spec()


@pytest.mark.parametrize(
    ("location", "message"),
    [("s3://models", "is not s3://bucket/key"), ("https://example.org/m.pt", "a local path or")],
)
def test_a_location_is_a_path_or_an_s3_uri(location: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        on_s3(location)
