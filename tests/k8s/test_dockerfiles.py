"""The Dockerfiles can't be built here (no Docker engine): check that what they copy, run and
compile exists in this repository and matches the manifests that use the images."""

from __future__ import annotations

import importlib.util
import re
import shlex
from importlib.metadata import version
from pathlib import Path

import pytest

from imgclf_serve.backends.artifact import ARTIFACT_DIR_ENV
from imgclf_serve.compile import build_parser
from tests.k8s.manifests import ROOT, rayservice, serve_config

DOCKERFILES = {"cpu": "Dockerfile.cpu", "inf2": "Dockerfile.inf2"}


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "docker" / name).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), " ".join(arguments.split())))
    return found


def ray_version() -> str:
    return rayservice("cpu")["spec"]["rayClusterConfig"]["rayVersion"]


@pytest.mark.parametrize(("target", "name"), DOCKERFILES.items())
def test_base_images_are_pinned_to_the_manifests_ray_version(target: str, name: str) -> None:
    bases = [args.split()[0] for instruction, args in instructions(name) if instruction == "FROM"]
    assert bases
    for base in bases:
        assert base.startswith(f"rayproject/ray:{ray_version()}-py3"), base
    # and the Ray these tests (and the Serve config) run with is that version too
    assert version("ray") == ray_version()


@pytest.mark.parametrize("name", DOCKERFILES.values())
def test_copied_paths_exist(name: str) -> None:
    for instruction, args in instructions(name):
        if instruction != "COPY" or "--from=" in args:
            continue
        sources = [word for word in shlex.split(args)[:-1] if not word.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"{name}: COPY {source}"


@pytest.mark.parametrize("name", DOCKERFILES.values())
def test_python_modules_and_imports_it_runs_exist(name: str) -> None:
    run = " ".join(args for instruction, args in instructions(name) if instruction == "RUN")
    for module in re.findall(r"python -m ([\w.]+)", run):
        assert importlib.util.find_spec(module), f"{name}: python -m {module}"
    for imports in re.findall(r'python -c "import ([\w., ]+)"', run):
        for module in (m.strip() for m in imports.split(",")):
            if module.split(".")[0] in ("imgclf", "imgclf_serve"):
                assert importlib.util.find_spec(module), f"{name}: import {module}"


@pytest.mark.parametrize(("target", "name"), [("neuronx", "Dockerfile.inf2")])
def test_the_model_is_compiled_where_the_backend_looks(target: str, name: str) -> None:
    steps = instructions(name)
    run = " ".join(args for instruction, args in steps if instruction == "RUN")
    (compile_args,) = re.findall(r"python -m imgclf_serve\.compile ((?:--[\w-]+ \S+ ?)+)", run)
    args = build_parser().parse_args(shlex.split(compile_args))  # the real CLI accepts them
    assert args.target == target
    env = dict(
        args_text.split("=", 1)
        for instruction, args_text in steps
        if instruction == "ENV" and "=" in args_text
    )
    artifact_dir = Path(env[ARTIFACT_DIR_ENV])
    assert args.out == artifact_dir / f"{args.model}-{target}.pt"  # backends.default_artifact
    overlay = name.rsplit(".", 1)[1]
    (app,) = serve_config(overlay)["applications"]
    (model,) = app["args"]["models"]
    assert (model["name"], model["backend"]) == (args.model, target)
    assert model.get("artifact") is None  # found through IMGCLF_ARTIFACT_DIR


@pytest.mark.parametrize("name", DOCKERFILES.values())
def test_the_command_runs_imgclf_serve_on_the_copied_config_with_its_ports_exposed(
    name: str,
) -> None:
    import json

    import tomllib

    from imgclf_serve.standalone import build_parser as standalone_parser

    steps = instructions(name)
    (cmd,) = [json.loads(args) for instruction, args in steps if instruction == "CMD"]
    scripts = tomllib.loads((ROOT / "serve" / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[cmd[0]] == "imgclf_serve.standalone:main"
    args = standalone_parser().parse_args(cmd[1:])
    workdir = [a for instruction, a in steps if instruction == "WORKDIR"][-1]
    assert str(args.config).startswith(workdir + "/")
    assert (ROOT / Path(args.config).relative_to(workdir)).is_file()  # COPY serve ./serve
    exposed = {int(port) for i, a in steps if i == "EXPOSE" for port in a.split()}
    assert exposed == {args.grpc_port, args.metrics_port}
    assert ("STOPSIGNAL", "SIGTERM") in steps
