"""A model of your own described in the config (ModelConfig.source/labels/input,
models/custom.py): what the config accepts, what loads, and the message for each way it can be
wrong. The models are built here: a small network scripted with TorchScript, and torchvision's
MobileNetV3-Small with 10 classes as an architecture named by import path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from imgclf_serve.models.custom import ModelSourceError, check_outputs, load_module
from imgclf_serve.settings import ModelConfig, SourceConfig
from tests.tiny_models import COLORS, Tiny

MOBILENET = "torchvision.models:mobilenet_v3_small"


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "colors.txt"
    path.write_text("\n".join(COLORS) + "\n")
    return path


@pytest.fixture
def scripted(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(path))
    return path


def own(labels: Path, **source: object) -> ModelConfig:
    return ModelConfig(name="colors", source=source, labels=labels, device="cpu")


def test_a_torchscript_model_with_its_labels_and_input(scripted: Path, labels: Path) -> None:
    config = ModelConfig(
        name="colors",
        source={"torchscript": scripted},
        labels=labels,
        input={"resize": 40, "crop": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
    )
    spec = config.spec()
    assert (spec.name, spec.num_classes, spec.input_size) == ("colors", 10, 32)
    assert spec.labels() == tuple(COLORS)
    assert (spec.preprocess.resize, spec.preprocess.mean) == (40, (0.5, 0.5, 0.5))
    module = spec.build(None)
    with torch.inference_mode():
        assert module(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_a_torch_export_program_with_a_dynamic_batch(tmp_path: Path, labels: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(
        Tiny().eval(), (torch.zeros(2, 3, 32, 32),), dynamic_shapes={"x": {0: batch}}
    )
    path = tmp_path / "tiny.pt2"
    torch.export.save(program, path)
    module = own(labels, exported=path).spec().build(None)
    assert not module.eval().training  # what the backends call
    with torch.inference_mode():
        assert module(torch.zeros(5, 3, 32, 32)).shape == (5, 10)
    not_a_program = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(not_a_program))
    with pytest.raises(ModelSourceError, match=r"is not a torch\.export file"):
        own(labels, exported=not_a_program).spec().build(None)


def test_a_state_dict_for_an_architecture_named_by_import_path(
    tmp_path: Path, labels: Path
) -> None:
    import torchvision

    trained = torchvision.models.mobilenet_v3_small(num_classes=10)
    path = tmp_path / "mobilenet.pth"
    torch.save(trained.state_dict(), path)
    config = own(
        labels, state_dict=path, architecture=MOBILENET, architecture_args={"num_classes": 10}
    )
    module = config.spec().build(None)
    assert not module.training
    for name, tensor in module.state_dict().items():
        assert torch.equal(tensor, trained.state_dict()[name])
    assert config.spec().input_size == 224  # ImageNet's input by default


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "my-model"}, "presets are .*efficientnet-lite0.*`source` and `labels`"),
        ({"name": "efficientnet-lite0", "source": {"torchscript": "m.pt"}, "labels": "l.txt"},
         "is a preset's name"),
        ({"name": "mine", "source": {"torchscript": "m.pt"}}, "needs `labels`"),
        ({"name": "resnet50", "labels": "l.txt"}, "a preset has its own"),
        ({"name": "mine", "source": {"torchscript": "m.pt", "state_dict": "s.pth"},
          "labels": "l.txt"}, "one of `torchscript`, `exported` or `state_dict`, not torchscript"),
        ({"name": "mine", "source": {"state_dict": "s.pth"}, "labels": "l.txt"},
         "`architecture` goes with `state_dict`"),
        ({"name": "mine", "source": {"state_dict": "s.pth", "architecture": "resnet18"},
          "labels": "l.txt"}, "not `module:callable`"),
        ({"name": "mine", "source": {"torchscript": "m.pt"}, "labels": "l.txt",
          "weights": "w.pth"}, "your own model's file is its `source`"),
        ({"name": "mine", "source": {"torchscript": "m.pt"}, "labels": "l.txt",
          "input": {"resize": 100, "crop": 224}}, "larger than input.resize"),
    ],
)  # fmt: skip
def test_the_config_says_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelConfig.model_validate(fields)


def test_missing_and_corrupt_files_are_named(tmp_path: Path, labels: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"model colors: torchscript file .*gone.pt"):
        own(labels, torchscript=tmp_path / "gone.pt").spec().build(None)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelSourceError, match=r"is not a TorchScript file .*torch.jit.save"):
        own(labels, torchscript=corrupt).spec().build(None)
    with pytest.raises(ModelSourceError, match="is not a state dict"):
        own(labels, state_dict=corrupt, architecture=MOBILENET).spec().build(None)
    with pytest.raises(ModelSourceError, match=r"labels file .*nothing.txt does not exist"):
        own(tmp_path / "nothing.txt", torchscript=corrupt).spec()


def test_a_state_dict_that_does_not_fit_its_architecture(tmp_path: Path, labels: Path) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(Tiny().state_dict(), path)
    with pytest.raises(
        ModelSourceError, match=r"does not fit .*mobilenet_v3_small\(num_classes=10\)"
    ):
        load_module(
            "colors",
            SourceConfig(
                state_dict=path, architecture=MOBILENET, architecture_args={"num_classes": 10}
            ),
        )
    with pytest.raises(ModelSourceError, match="cannot be imported"):
        load_module("colors", SourceConfig(state_dict=path, architecture="no_such_module:Net"))


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "is empty"), ("red\n\nblue\n", "blank line \\(2\\)"), ("\xff\xfe", None)],
)
def test_labels_files_are_checked(
    tmp_path: Path, scripted: Path, text: str, message: str | None
) -> None:
    path = tmp_path / "labels.txt"
    if message is None:
        path.write_bytes(b"\xff\xfe\x00bad")
        message = "is not UTF-8 text"
    else:
        path.write_text(text)
    with pytest.raises(ModelSourceError, match=message):
        own(path, torchscript=scripted).spec()


def test_outputs_must_match_the_labels() -> None:
    check_outputs("colors", 10, 10)
    with pytest.raises(ModelSourceError, match="outputs 7 classes but its labels file names 10"):
        check_outputs("colors", 7, 10)
