"""Compiled model artifacts: a TorchScript file plus a JSON sidecar saying how it was made."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

# Where an image keeps artifacts compiled at build time, named <model>-<target>.pt.
ARTIFACT_DIR_ENV = "IMGCLF_ARTIFACT_DIR"


@dataclass(frozen=True)
class ArtifactInfo:
    """How an artifact was compiled. batch_size is what it was traced with."""

    model: str
    target: str
    batch_size: int
    dynamic_batch: bool
    torch_version: str


def sidecar_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".json")


def write_info(artifact: Path, info: ArtifactInfo) -> None:
    sidecar_path(artifact).write_text(json.dumps(asdict(info), indent=2) + "\n")


def read_info(artifact: Path) -> ArtifactInfo:
    sidecar = sidecar_path(artifact)
    if not artifact.is_file():
        raise FileNotFoundError(f"model artifact {artifact} does not exist")
    if not sidecar.is_file():
        raise FileNotFoundError(
            f"{sidecar} is missing: artifacts must be written by `python -m imgclf_serve.compile`"
        )
    return ArtifactInfo(**json.loads(sidecar.read_text()))


def default_artifact(model: str, target: str) -> Path | None:
    """$IMGCLF_ARTIFACT_DIR/<model>-<target>.pt when that variable is set and the file exists:
    so one Serve config serves a CPU image and a Neuron image that compiled its model."""
    directory = os.environ.get(ARTIFACT_DIR_ENV)
    if not directory:
        return None
    path = Path(directory) / f"{model}-{target}.pt"
    return path if path.is_file() else None
