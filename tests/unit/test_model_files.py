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

from imgclf_serve.models.files import ModelSourceError
from imgclf_serve.settings import ModelConfig
from imgclf_tools.ports import free_port
from tests.s3 import local_s3, s3_client, s3_env
from tests.tiny_models import COLORS, Tiny


def use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """An empty local S3 that this process's environment names; yields that environment."""
    with local_s3(tmp_path / "cache") as env:
        use(monkeypatch, env)
        yield env


def upload(env: dict[str, str], tmp_path: Path) -> None:
    client = s3_client(env)
    client.create_bucket(Bucket="models")
    model = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(model))
    client.upload_file(str(model), "models", "colors/v1/model.pt")
    client.put_object(Bucket="models", Key="colors/v1/labels.txt", Body="\n".join(COLORS))


def on_s3(torchscript: str, labels: str = "s3://models/colors/v1/labels.txt") -> ModelConfig:
    return ModelConfig(name="colors", source={"torchscript": torchscript}, labels=labels)


def test_a_model_and_its_labels_are_fetched_from_s3(s3: dict[str, str], tmp_path: Path) -> None:
    upload(s3, tmp_path)
    spec = on_s3("s3://models/colors/v1/model.pt").spec()
    assert spec.labels() == tuple(COLORS) and spec.num_classes == 10
    with torch.inference_mode():
        assert spec.build(None)(torch.zeros(1, 3, 224, 224)).shape == (1, 10)


def test_what_cannot_be_fetched_is_named(s3: dict[str, str], tmp_path: Path) -> None:
    upload(s3, tmp_path)
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
    use(monkeypatch, s3_env(f"http://127.0.0.1:{free_port()}", tmp_path))  # nothing there
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
