"""Generate the Python code for protos/, or check that the committed copy is current.

    python scripts/protos.py generate   # rewrite the generated *_pb2*.py[i]
    python scripts/protos.py check      # exit 1 if regeneration would change anything

protos/imgclf/ (imgclf's own API) goes to clients/ (the client library, import `imgclf.v1`);
protos/inference/ (the Open Inference Protocol, package `inference`) goes to serve/imgclf_serve/
(import `imgclf_serve.inference`: only the server speaks it, and a top-level `inference`
package would be a generic name to ship), its generated imports rewritten to match.

The generator is grpcio-tools, pinned in the Makefile (GRPCIO_TOOLS) and run from its own
.venv-protoc: the generated code requires at least the grpcio and protobuf of the generator that
wrote it, so an old generator keeps the client's floors low (clients/pyproject.toml) while .venv
runs the newest. Another version writes other bytes, so the check would fail for a reason that is
not a proto change.
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
# Top-level proto directory -> where its generated package goes, relative to the root.
OUT_DIRS = {"imgclf": Path("clients"), "inference": Path("serve/imgclf_serve")}
# Generated names of a proto package's modules -> the Python package they live in: imports, and
# the module name the message classes carry (pickle, which Ray's proxy uses, imports it).
IMPORT_REWRITES = {
    "from inference import ": "from imgclf_serve.inference import ",
    "(DESCRIPTOR, 'inference.": "(DESCRIPTOR, 'imgclf_serve.inference.",
}
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def out_dir(proto: Path) -> Path:
    return OUT_DIRS[proto.relative_to(PROTO_ROOT).parts[0]]


def generated_files(root: Path) -> list[Path]:
    """Generated files under `root`, relative to it, in the directories protos/ generates."""
    found = []
    for top, out in OUT_DIRS.items():
        found += [
            p.relative_to(root)
            for p in (root / out / top).rglob("*.py*")
            if p.name.endswith(GENERATED_SUFFIXES)
        ]
    return sorted(found)


def generate(root: Path) -> None:
    for proto in proto_files():
        out = root / out_dir(proto)
        out.mkdir(parents=True, exist_ok=True)
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(proto.relative_to(PROTO_ROOT)),
        ]
        if protoc.main(args) != 0:
            sys.exit(f"protoc failed on {proto}")
    for path in generated_files(root):
        _rewrite_imports(root / path)


def _rewrite_imports(path: Path) -> None:
    text = path.read_text()
    fixed = text
    for old, new in IMPORT_REWRITES.items():
        fixed = fixed.replace(old, new)
    if fixed != text:
        path.write_text(fixed)


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh = generated_files(fresh_root)
        committed = generated_files(ROOT)
        stale = sorted(set(fresh) ^ set(committed))
        stale += [
            p
            for p in fresh
            if p in committed and not filecmp.cmp(fresh_root / p, ROOT / p, shallow=False)
        ]
    if stale:
        print("generated code is out of date; run `make protos` and commit:", file=sys.stderr)
        for path in stale:
            print(f"  {path}", file=sys.stderr)
        return 1
    print(f"generated code is current ({len(fresh)} files)")
    return 0


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "generate":
        generate(ROOT)
        return 0
    if command == "check":
        return check()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
