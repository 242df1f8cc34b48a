"""Generate the Python code for protos/ into clients/, or check that the committed copy is current.

    python scripts/protos.py generate   # rewrite clients/imgclf/v1/*_pb2*.py[i]
    python scripts/protos.py check      # exit 1 if regeneration would change anything

The generator is grpcio-tools, pinned in pyproject.toml's dev extra: another version writes
other bytes, so the check would fail for a reason that is not a proto change.
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "clients"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generated_files(out_root: Path) -> list[Path]:
    found = [p for p in out_root.rglob("*.py*") if p.name.endswith(GENERATED_SUFFIXES)]
    return sorted(p.relative_to(out_root) for p in found)


def generate(out_root: Path) -> None:
    for proto in proto_files():
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}",
            str(proto.relative_to(PROTO_ROOT)),
        ]
        if protoc.main(args) != 0:
            sys.exit(f"protoc failed on {proto}")


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh = generated_files(fresh_root)
        committed = [p for p in generated_files(OUT_ROOT) if p.parts[0] != "__pycache__"]
        stale = sorted(set(fresh) ^ set(committed))
        stale += [
            p
            for p in fresh
            if p in committed and not filecmp.cmp(fresh_root / p, OUT_ROOT / p, shallow=False)
        ]
    if stale:
        print("generated code is out of date; run `make protos` and commit:", file=sys.stderr)
        for path in stale:
            print(f"  clients/{path}", file=sys.stderr)
        return 1
    print(f"generated code is current ({len(fresh)} files)")
    return 0


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "generate":
        generate(OUT_ROOT)
        return 0
    if command == "check":
        return check()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
