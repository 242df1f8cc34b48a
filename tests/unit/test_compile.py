"""compile.py: the command-line tool writes an artifact and its sidecar, or says why not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch


def run_compile(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgclf_serve.compile", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_resnet50_for_cpu_from_a_weights_file(tmp_path: Path) -> None:
    from torchvision.models import resnet50

    weights = tmp_path / "r50.pth"
    torch.save(resnet50(weights=None).state_dict(), weights)
    out = tmp_path / "artifacts" / "r50-cpu.pt"
    result = run_compile(
        "--model", "resnet50", "--weights", str(weights), "--target", "cpu",
        "--batch-size", "2", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    info = json.loads(out.with_name("r50-cpu.pt.json").read_text())
    assert info["model"] == "resnet50" and info["target"] == "cpu" and info["batch_size"] == 2
    module = torch.jit.load(str(out))
    assert module(torch.zeros(3, 3, 224, 224)).shape == (3, 1000)


def test_neuron_target_without_the_neuron_sdk_fails_in_one_line(tmp_path: Path) -> None:
    result = run_compile(
        "--model", "efficientnet-lite0", "--target", "neuron", "--out", str(tmp_path / "x.pt")
    )  # fmt: skip
    assert result.returncode == 1
    assert "error: backend neuron needs the torch_neuron package" in result.stderr
    assert "Traceback" not in result.stderr


def test_resnet50_without_weights_fails_in_one_line(tmp_path: Path) -> None:
    result = run_compile("--model", "resnet50", "--target", "cpu", "--out", str(tmp_path / "x"))
    assert result.returncode == 1
    assert "resnet50 ships no weights" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_of_your_own_compiled_from_its_config_loads_as_its_artifact(
    tmp_path: Path,
) -> None:
    import numpy as np
    import yaml

    from imgclf_serve.backends import BackendName, ModelSource, load_backend
    from imgclf_serve.settings import ModelConfig
    from tests.tiny_models import COLORS, Tiny

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(Tiny()), str(tmp_path / "colors.pt"))
    (tmp_path / "colors.txt").write_text("\n".join(COLORS))
    model = {
        "name": "colors",
        "source": {"torchscript": str(tmp_path / "colors.pt")},
        "labels": str(tmp_path / "colors.txt"),
        "input": {"resize": 32, "crop": 32},
    }
    config = tmp_path / "serve_config.yaml"
    config.write_text(yaml.safe_dump({"applications": [{"args": {"models": [model]}}]}))
    out = tmp_path / "colors-cpu.pt"
    result = run_compile(
        "--config", str(config), "--model", "colors", "--target", "cpu", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    deployed = ModelConfig.model_validate({**model, "artifact": str(out)})
    backend = load_backend(
        BackendName.CPU, deployed.spec(), ModelSource(artifact=deployed.artifact), 1
    )
    batch = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    expected = torch.softmax(
        torch.jit.load(str(tmp_path / "colors.pt"))(torch.from_numpy(batch)), -1
    )
    np.testing.assert_allclose(backend.predict(batch), expected.detach().numpy(), rtol=1e-5)

    unknown = run_compile("--model", "colors", "--target", "cpu", "--out", str(out))
    assert unknown.returncode == 1 and "pass the Serve config that describes it" in unknown.stderr
    missing = run_compile(
        "--config", str(config), "--model", "roses", "--target", "cpu", "--out", str(out)
    )
    assert missing.returncode == 1 and "has no model 'roses'; its models: colors" in missing.stderr
