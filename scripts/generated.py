"""Shared by the scripts that keep generated files in the repository (dashboards.py, k8s.py):
write the files, or check that the committed ones are what the generator makes."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_or_check(files: dict[Path, str], command: str, what: str, remedy: str) -> int:
    """`command` "write": write every file; "check": list the stale ones and return 1."""
    stale = []
    for path, text in files.items():
        if command == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(str(path.relative_to(ROOT)))
    if stale:
        print(f"stale {what} (run `{remedy}` and commit):", *stale, sep="\n  ")
        return 1
    return 0
