"""examples/classify.py, the raw-stub example the README points to, against the server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IMAGES_DIR
from tests.integration.conftest import Server

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "examples" / "classify.py"


def run_example(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(EXAMPLE), "--target", server.cluster.grpc_target, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_classifies_the_seed_images(server: Server) -> None:
    images = sorted(str(path) for path in IMAGES_DIR.glob("*.jpg"))
    result = run_example(server, *images)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("kitten_small.jpg  (efficientnet-lite0; replica ")
    assert "tabby (281)" in lines[1]
    assert "strawberry (949)" in result.stdout and "tiger (292)" in result.stdout


def test_reports_a_bad_image_and_exits_non_zero(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    result = run_example(server, str(bad), str(IMAGES_DIR / "tiger.jpg"))
    assert result.returncode == 1
    assert "notes.jpg: INVALID_ARGUMENT: image 0: cannot decode" in result.stdout
    assert "tiger (292)" in result.stdout


QUICKSTART = EXAMPLE.with_name("quickstart.py")
README = EXAMPLE.parents[1] / "README.md"


def test_the_readme_quickstart_is_the_example_and_runs(server: Server) -> None:
    assert QUICKSTART.read_text().strip() in README.read_text()
    env = {**os.environ, "IMGCLF_TARGET": server.cluster.grpc_target}
    done = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=README.parent,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("tiger 0.8") and "NEURON_CORE" in first
    assert second.startswith("['tabby', 'image 1: cannot decode")
