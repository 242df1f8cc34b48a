"""Resolve each Docker image's Python dependencies on this machine, so that a conflict fails
`make test` instead of a `docker build` on EKS.

    python scripts/image_requirements.py [IMAGE ...]      (default: every image)

For an image: the packages in docker/requirements/<image>.txt (under which, as constraints, its
Dockerfile installs ./clients and ./serve) plus both projects' declared dependencies, resolved
by pip (`install --dry-run --report`) for the image's Python and platform, wheels only, from
the package indexes this machine reaches. Lines marked `neuron-index` name packages that only
the Neuron package index serves: when that index answers, they are resolved with the rest;
when it does not (as on the development machines and CI), they are checked through the
requirements they declare (NEURON_REQUIRES) against what pip resolved, and reported as not
resolved. pip resolves versions, not builds: PyPI's torch stands in for the CPU build of the
same version that the images install from the PyTorch CPU index.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "docker" / "requirements"
NEURON_INDEX = "https://pip.repos.neuron.amazonaws.com"
NEURON_MARK = "neuron-index"
# rayproject/ray's images run Ubuntu 22.04 (glibc 2.35) on x86_64: the wheels they accept.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(35, 4, -1)] + [
    f"{legacy}_x86_64" for legacy in ("manylinux2014", "manylinux2010", "manylinux1", "linux")
]
IMAGE_PYTHON = {"cpu": "3.11", "inf2": "3.11"}
# What the Neuron-only packages declare (pipdeptree of torch-neuronx 2.9.0.2.11 with its
# dependencies, huggingface/optimum-neuron#1013): checked when the Neuron index cannot be read.
NEURON_REQUIRES = {
    "torch-neuronx": ["torch==2.9.*", "protobuf>3.19", "libneuronxla>=2.2,<2.3"],
    "libneuronxla": ["neuronx-cc~=2.0"],
    "neuronx-cc": ["protobuf>=3"],
}


@dataclass
class Resolution:
    image: str
    python: str
    resolved: dict[str, str] = field(default_factory=dict)
    not_resolved: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        key = ("ray", "torch", "torchvision", "protobuf", "grpcio", "numpy", "pydantic")
        versions = ", ".join(f"{n} {self.resolved[n]}" for n in key if n in self.resolved)
        lines = [f"{self.image} (Python {self.python}): {len(self.resolved)} packages; {versions}"]
        if self.not_resolved:
            lines.append(
                f"  not resolved (the Neuron index did not answer): {', '.join(self.not_resolved)}"
                "; checked by their declared requirements instead"
            )
        lines += [f"  CONFLICT: {problem}" for problem in self.problems]
        return "\n".join(lines)


def image_requirements(image: str) -> tuple[list[Requirement], list[Requirement]]:
    """(from the package indexes this machine reads, from the Neuron index only)."""
    general, neuron = [], []
    for line in (REQUIREMENTS / f"{image}.txt").read_text().splitlines():
        text, _, comment = line.partition("#")
        if text.strip():
            (neuron if comment.strip() == NEURON_MARK else general).append(Requirement(text))
    return general, neuron


def project_requirements() -> list[Requirement]:
    """What ./clients and ./serve declare (with the extras the images install, "s3"), less
    the server's requirement on the client."""
    found = []
    for project in ("clients", "serve"):
        data = tomllib.loads((ROOT / project / "pyproject.toml").read_text())["project"]
        found += [Requirement(r) for r in data["dependencies"]]
        found += [Requirement(r) for r in data.get("optional-dependencies", {}).get("s3", [])]
    return [r for r in found if canonicalize_name(r.name) != "imgclf"]


def pip_resolve(requirements: list[Requirement], python: str, extra_index: str | None) -> dict:
    """pip's installation report for `requirements` on the image's Python and platform."""
    with tempfile.TemporaryDirectory() as scratch:
        listed = Path(scratch) / "requirements.txt"
        listed.write_text("".join(f"{r}\n" for r in requirements))
        report = Path(scratch) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--report", str(report), "--python-version", python,
            "--implementation", "cp", "--only-binary=:all:", "-r", str(listed),
        ]  # fmt: skip
        command += [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        if extra_index:
            command += ["--extra-index-url", extra_index]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "WARNING" not in line]
            raise ResolutionError("\n".join(errors[-15:]))
        result: dict = json.loads(report.read_text())
        return result


class ResolutionError(Exception):
    pass


def neuron_index_answers(requirement: Requirement) -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        probe = [
            sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--quiet",
            "--timeout", "10", "--retries", "0", "--index-url", NEURON_INDEX, "--dest", scratch,
            "--python-version", "3.11", "--only-binary=:all:", str(requirement),
        ]  # fmt: skip
        return subprocess.run(probe, capture_output=True).returncode == 0


def declared_conflicts(
    neuron: list[Requirement], resolved: dict[str, str], declared: dict[str, list[str]]
) -> list[str]:
    """Each requirement a Neuron-only package declares that the resolution (or the version
    pinned for another Neuron-only package) does not meet."""
    pinned = {canonicalize_name(r.name): r for r in neuron}
    problems = []
    for package in pinned:
        for text in declared.get(package, []):
            wanted = Requirement(text)
            name = canonicalize_name(wanted.name)
            if name in pinned:
                exact = [s.version for s in pinned[name].specifier if s.operator == "=="]
                have = exact[0] if exact and "*" not in exact[0] else None
            else:
                have = resolved.get(name)
            if have is None and name in pinned:
                continue  # a range pinned against a range: the index decides
            if have is None or not wanted.specifier.contains(Version(have), prereleases=True):
                problems.append(f"{package} requires {wanted}, the image gets {name} {have}")
    return problems


def resolve(image: str) -> Resolution:
    python = IMAGE_PYTHON[image]
    general, neuron = image_requirements(image)
    outcome = Resolution(image, python)
    reachable = bool(neuron) and neuron_index_answers(neuron[0])
    wanted = general + project_requirements() + (neuron if reachable else [])
    try:
        report = pip_resolve(wanted, python, NEURON_INDEX if reachable else None)
    except ResolutionError as exc:
        outcome.problems.append(f"pip cannot resolve:\n{exc}")
        return outcome
    outcome.resolved = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in report["install"]
    }
    if not reachable:
        outcome.not_resolved = [str(r) for r in neuron]
        outcome.problems += declared_conflicts(neuron, outcome.resolved, NEURON_REQUIRES)
    return outcome


def main(argv: list[str]) -> int:
    images = argv or sorted(IMAGE_PYTHON)
    failed = False
    for image in images:
        outcome = resolve(image)
        print(outcome.summary())
        failed |= bool(outcome.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
