"""backends: choosing a runtime per core kind, loading models and compiled artifacts.

No Neuron runtime or GPU exists here: the neuron/cuda cases check the fallback of `auto`
and the errors of an explicit backend, not the hardware paths themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf_serve.backends import BackendName, ModelSource, load_backend, resolve_backend
from imgclf_serve.backends.cpu import CpuBackend
from imgclf_serve.backends.fixed_batch import run_in_fixed_batches
from imgclf_serve.compile import compile_model
from imgclf_serve.devices import AssignedDevice, DeviceKind
from imgclf_serve.models import get_spec

NEURON_CORE_2 = AssignedDevice(DeviceKind.NEURON_CORE, (2,))
LITE0 = get_spec("efficientnet-lite0")


def test_auto_on_a_neuron_core_without_runtime_falls_back_to_cpu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert resolve_backend("auto", NEURON_CORE_2) is BackendName.CPU
    assert "no Neuron runtime" in caplog.text and "neuron_core 2" in caplog.text


def test_auto_on_a_gpu_without_cuda_falls_back_to_cpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_backend("auto", AssignedDevice(DeviceKind.GPU, (0,))) is BackendName.CPU


def test_auto_on_cpu_and_explicit_names() -> None:
    assert resolve_backend("auto", AssignedDevice(DeviceKind.CPU)) is BackendName.CPU
    assert resolve_backend("neuronx", NEURON_CORE_2) is BackendName.NEURONX


@pytest.mark.parametrize("name", [BackendName.NEURON, BackendName.NEURONX])
def test_explicit_neuron_backend_without_runtime_fails_clearly(
    name: BackendName, tmp_path: Path
) -> None:
    artifact = tmp_path / "model.pt"
    compile_model("efficientnet-lite0", "cpu", 1, artifact)
    with pytest.raises(RuntimeError, match=f"backend {name.value} needs the torch_neuron"):
        load_backend(name, LITE0, ModelSource(artifact=artifact), cpu_threads=1)


def test_neuron_backend_needs_an_artifact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMGCLF_ARTIFACT_DIR", raising=False)
    with pytest.raises(ValueError, match=r"needs `artifact` \(or \$IMGCLF_ARTIFACT_DIR/"):
        load_backend(BackendName.NEURON, LITE0, ModelSource(), cpu_threads=1)


def test_an_image_s_artifact_dir_supplies_the_default_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgclf_serve.backends.artifact import default_artifact

    monkeypatch.setenv("IMGCLF_ARTIFACT_DIR", str(tmp_path))
    assert default_artifact("efficientnet-lite0", "neuron") is None  # not compiled yet
    compiled = tmp_path / "efficientnet-lite0-neuron.pt"
    compiled.write_bytes(b"torchscript")
    assert default_artifact("efficientnet-lite0", "neuron") == compiled
    # found, then refused for the runtime that is missing here (not for the missing artifact)
    with pytest.raises(RuntimeError, match="needs the torch_neuron"):
        load_backend(BackendName.NEURON, LITE0, ModelSource(), cpu_threads=1)


def test_cpu_backend_returns_probabilities() -> None:
    backend = load_backend(BackendName.CPU, LITE0, ModelSource(), cpu_threads=1)
    assert isinstance(backend, CpuBackend)
    backend.init_thread()
    assert torch.get_num_threads() == 1
    probabilities = backend.predict(np.zeros((3, 3, 224, 224), dtype=np.float32))
    assert probabilities.shape == (3, 1000) and probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


def test_cpu_backend_runs_a_compiled_artifact_like_the_eager_model(tmp_path: Path) -> None:
    artifact = tmp_path / "lite0-cpu.pt"
    compile_model("efficientnet-lite0", "cpu", 2, artifact)
    batch = np.random.default_rng(0).standard_normal((3, 3, 224, 224), dtype=np.float32)
    eager = load_backend(BackendName.CPU, LITE0, ModelSource(), cpu_threads=1)
    traced = load_backend(BackendName.CPU, LITE0, ModelSource(artifact=artifact), cpu_threads=1)
    assert np.allclose(eager.predict(batch), traced.predict(batch), atol=1e-5)


def test_artifact_for_another_model_or_target_is_refused(tmp_path: Path) -> None:
    artifact = tmp_path / "lite0.pt"
    compile_model("efficientnet-lite0", "cpu", 1, artifact)
    with pytest.raises(ValueError, match="holds model 'efficientnet-lite0', not 'resnet50'"):
        load_backend(BackendName.CPU, get_spec("resnet50"), ModelSource(artifact=artifact), 1)
    artifact.with_name("lite0.pt.json").unlink()
    with pytest.raises(FileNotFoundError, match="must be written by"):
        load_backend(BackendName.CPU, LITE0, ModelSource(artifact=artifact), 1)


@pytest.mark.parametrize("rows", [1, 3, 4, 5, 9])
def test_fixed_batches_pad_and_trim(rows: int) -> None:
    seen = []

    def forward(chunk: torch.Tensor) -> torch.Tensor:
        seen.append(chunk.shape[0])
        return chunk.sum(dim=(1, 2, 3), keepdim=False)[:, None] * 2

    batch = torch.arange(rows, dtype=torch.float32)[:, None, None, None].expand(rows, 3, 2, 2)
    out = run_in_fixed_batches(forward, batch, 4)
    assert set(seen) == {4}
    assert out[:, 0].tolist() == [24.0 * i for i in range(rows)]


def test_the_null_backend_returns_fixed_probabilities_without_pixels() -> None:
    backend = load_backend(BackendName.NULL, get_spec("null"), ModelSource(), cpu_threads=1)
    assert backend.decodes is False
    probabilities = backend.predict(np.zeros((3, 0), dtype=np.float32))
    assert probabilities.shape == (3, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (np.diff(probabilities[0]) < 0).all(), "class 0 first, then falling"


def test_the_null_model_defaults_to_the_null_backend_and_has_no_module() -> None:
    spec = get_spec("null")
    assert spec.default_backend == "null"
    with pytest.raises(ValueError, match="backend null only"):
        load_backend(BackendName.CPU, spec, ModelSource(), cpu_threads=1)
