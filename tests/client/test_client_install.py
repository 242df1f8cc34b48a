"""The client is the base install: it needs grpcio, protobuf and gRPC's health messages only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib

PYPROJECT = Path(__file__).parents[2] / "clients" / "pyproject.toml"

# Runs in a fresh interpreter where the server stack can't be imported at all.
NO_SERVER_STACK = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "ray", "PIL", "numpy", "imgclf_serve"}:
            raise ImportError(f"the client must not import {name}")
sys.meta_path.insert(0, Refuse())
import imgclf, imgclf.cli, imgclf.aio
from imgclf.images import image_bytes
assert image_bytes(b"raw") == b"raw"
imgclf.cli.build_parser().parse_args(["classify", "x.jpg", "--json"])
print("ok")
"""


def test_base_dependencies_are_grpc_and_protobuf_only() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("<")[0] for dep in project["dependencies"]}
    assert names == {"grpcio", "grpcio-health-checking", "protobuf"}
    assert project["scripts"] == {"imgclf": "imgclf.cli:main"}


def test_the_client_and_cli_import_without_torch_ray_or_pillow() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_SERVER_STACK], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
