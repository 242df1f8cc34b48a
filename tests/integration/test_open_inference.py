"""The Open Inference Protocol (KServe v2 / Triton gRPC) on the server's one port, driven by
clients nobody here wrote: tritonclient (sync and aio) and the kserve SDK. They run from
.venv-oip (`make oip-clients`; their protobuf pins conflict with imgclf's), each in its own
process (oip_clients/README.md), against the real server and model."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IMAGES_DIR
from tests.integration.conftest import NEURON_CORES, Server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = Path(__file__).with_name("oip_clients")
OIP_PYTHON = ROOT / ".venv-oip" / "bin" / "python"
SEED_TOP1 = ["tiger", "tabby", "strawberry"]  # tiger.jpg, kitten_small.jpg, strawberry.jpg
SEED_CLASS = [292, 281, 949]


def run_client(script: str, server: Server) -> dict[str, Any]:
    if not OIP_PYTHON.exists():
        pytest.fail(f"{OIP_PYTHON} is missing: `make oip-clients` installs the third-party clients")
    done = subprocess.run(
        [str(OIP_PYTHON), str(CLIENTS / script), server.cluster.grpc_target, str(IMAGES_DIR)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=CLIENTS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


def test_tritonclient_sync_health_metadata_inference_and_errors(server: Server) -> None:
    seen = run_client("tritonclient_sync.py", server)
    assert (seen["live"], seen["ready"], seen["model_ready"], seen["model_ready_v1"]) == (
        True,
        True,
        True,
        True,
    )
    assert seen["server"]["name"] == "imgclf"
    assert "classification" in seen["server"]["extensions"]
    assert seen["metadata"] == {
        "versions": ["1"],
        "inputs": [["IMAGE", "BYTES", ["-1", "1"]], ["PIXELS", "FP32", ["-1", "3", "224", "224"]]],
        "outputs": [["PROBABILITIES", "FP32"], ["CLASS_INDEX", "INT64"], ["LABELS", "BYTES"]],
    }
    assert seen["config"]["instances"] == NEURON_CORES  # one replica per NeuronCore
    assert seen["config"]["kind"] == "KIND_MODEL"  # NeuronCores: devices the model manages
    assert seen["config"]["inputs"] == ["IMAGE", "PIXELS"]
    assert ["efficientnet-lite0", "1", "READY"] in seen["index"]

    encoded = seen["bytes"]
    assert encoded["top1"] == SEED_TOP1 and encoded["class_index"] == SEED_CLASS
    assert encoded["shape"] == [3, 5] and encoded["id"] == "sync-1"
    assert all(0.3 < p <= 1.0 for p in encoded["probabilities"])
    assert seen["bytes_n_by_1"] == SEED_TOP1
    tiger, kitten, strawberry = seen["classification"]
    assert len(tiger) == 2 and tiger[0].endswith(":292:tiger")
    assert float(tiger[0].split(":")[0]) == pytest.approx(encoded["probabilities"][0], abs=1e-6)
    assert kitten[0].endswith(":281:tabby") and strawberry[0].endswith(":949:strawberry")

    # The caller's own preprocessing (Pillow bilinear) differs slightly from the server's.
    assert seen["fp32"]["top1"] == SEED_TOP1 and seen["fp32"]["shape"] == [3, 3]
    for raw, enc in zip(seen["fp32"]["probabilities"], encoded["probabilities"], strict=True):
        assert raw == pytest.approx(enc, abs=0.05)

    errors = seen["errors"]
    assert errors["bad_image"][0] == "INVALID_ARGUMENT"
    assert errors["bad_image"][1].startswith("input IMAGE element 1: cannot decode")
    assert errors["unknown_model"] == [
        "NOT_FOUND",
        "model 'nope' is not deployed; deployed models: efficientnet-lite0, resnet50",
    ]
    assert (
        errors["unknown_version"][0] == "NOT_FOUND"
        and "versions: 1" in errors["unknown_version"][1]
    )
    assert errors["wrong_datatype"] == [
        "INVALID_ARGUMENT",
        "input IMAGE takes datatype BYTES; got 'FP32'",
    ]
    assert errors["statistics"][0] == "UNIMPLEMENTED"  # declared only where implemented
    assert seen["after_errors"] == ["tiger"]


def test_tritonclient_aio_concurrent_bytes_and_fp32(server: Server) -> None:
    seen = run_client("tritonclient_aio.py", server)
    assert seen["ready"] is True and seen["inputs"] == ["IMAGE", "PIXELS"]
    assert seen["concurrent_top1"] == [SEED_TOP1] * 8


def test_kserve_sdk_grpc_client(server: Server) -> None:
    seen = run_client("kserve_grpc.py", server)
    assert (seen["live"], seen["ready"], seen["model_ready"]) == (True, True, True)
    assert seen["bytes"]["LABELS"] == SEED_TOP1 and seen["bytes"]["CLASS_INDEX"] == SEED_CLASS
    assert seen["fp32_top1"] == SEED_TOP1
    assert seen["bad_image"][0] == "INVALID_ARGUMENT"
    assert seen["bad_image"][1].startswith("input IMAGE element 1: cannot decode")


EXAMPLE = ROOT / "examples" / "open_inference.py"


def test_the_readme_open_inference_example_is_the_example_and_runs(server: Server) -> None:
    assert EXAMPLE.read_text().strip() in (ROOT / "README.md").read_text()
    done = subprocess.run(
        [str(OIP_PYTHON), str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "IMGCLF_TARGET": server.cluster.grpc_target},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ready, top1, top2 = done.stdout.splitlines()
    assert ready == "True"
    assert top1 == "[b'tiger' b'strawberry'] (2, 3)"
    assert top2.startswith("[b'0.8") and ":292:tiger' b'0.0" in top2 and ":282:tiger cat']" in top2
