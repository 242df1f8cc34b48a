"""The repository's two distributions, built as a user gets them: wheels from their sdists
(`python -m build`), and the client installed into a clean venv at its oldest allowed
grpcio and protobuf (the floors in clients/pyproject.toml)."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = {"imgclf": ROOT / "clients", "imgclf-serve": ROOT / "serve"}
BUILD_TIMEOUT_S = 600


def project(name: str) -> dict:  # type: ignore[type-arg]
    table: dict = tomllib.loads((PROJECTS[name] / "pyproject.toml").read_text())["project"]  # type: ignore[type-arg]
    return table


def floors(name: str) -> dict[str, str]:
    """Each dependency's lower bound (`>=`), by distribution name."""
    found = {}
    for requirement in project(name)["dependencies"]:
        match = re.match(r"([A-Za-z0-9_.\[\]-]+)\s*>=\s*([^,;\s]+)", requirement)
        if match:
            found[match.group(1).split("[")[0]] = match.group(2)
    return found


def build(name: str, out: Path) -> tuple[Path, Path]:
    """(wheel, sdist) of one distribution; the wheel is built from the sdist."""
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(PROJECTS[name])],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stem = name.replace("-", "_")
    (wheel,) = out.glob(f"{stem}-*.whl")
    (sdist,) = out.glob(f"{stem}-*.tar.gz")
    return wheel, sdist


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def imgclf(self) -> Path:
        return self.path / "bin" / "imgclf"

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.python), "-m", "pip", "--disable-pip-version-check", *args],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done


def clean_venv(path: Path) -> Venv:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return Venv(path)


def oldest_client_venv(path: Path, wheel: Path) -> Venv:
    """The client wheel with exactly its declared floors of grpcio, its health messages and
    protobuf (the oldest versions a user may have)."""
    env = clean_venv(path)
    pins = [f"{name}=={version}" for name, version in floors("imgclf").items()]
    env.pip("install", "--quiet", str(wheel), *pins)
    return env
