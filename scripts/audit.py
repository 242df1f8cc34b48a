"""Dependency audit: pip-audit over every package installed in this venv (the set CI tests).

    python scripts/audit.py [--strict]

Fails (exit 1) on a known vulnerability that has a fixed release: upgrade to it. A known
vulnerability without any fix is listed but does not fail (there is nothing to upgrade to).
Packages the vulnerability service could not look up are counted and named; `--strict` also
fails on those, e.g. where the service is unreachable, so an audit that checked nothing
cannot pass silently as clean.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PIP_AUDIT = Path(sys.executable).with_name("pip-audit")


@dataclass
class Verdict:
    audited: int = 0
    fixable: list[str] = field(default_factory=list)
    unfixable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def failed(self, strict: bool) -> bool:
        return bool(self.fixable) or (strict and bool(self.skipped))

    def lines(self) -> list[str]:
        total = self.audited + len(self.skipped)
        out = [f"audited {self.audited} of {total} installed packages"]
        out += [f"VULNERABLE (fix available): {line}" for line in self.fixable]
        out += [f"vulnerable, no fix released: {line}" for line in self.unfixable]
        if self.skipped:
            out.append(
                f"not audited ({len(self.skipped)}; the vulnerability service could not look "
                f"them up): {', '.join(self.skipped)}"
            )
        return out


def judge(report: dict[str, Any]) -> Verdict:
    """Sort pip-audit's JSON report (`-f json`) into what fails the audit and what does not."""
    verdict = Verdict()
    for dependency in report["dependencies"]:
        name = f"{dependency['name']} {dependency.get('version', '')}".strip()
        if "skip_reason" in dependency:
            verdict.skipped.append(name)
            continue
        verdict.audited += 1
        for vuln in dependency.get("vulns", []):
            ids = ", ".join([vuln["id"], *vuln.get("aliases", [])])
            if vuln.get("fix_versions"):
                fixes = ", ".join(vuln["fix_versions"])
                verdict.fixable.append(f"{name}: {ids}; fixed in {fixes}")
            else:
                verdict.unfixable.append(f"{name}: {ids}")
    return verdict


def run_pip_audit() -> dict[str, Any]:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        requirements, output = Path(tmp) / "requirements.txt", Path(tmp) / "audit.json"
        requirements.write_text(frozen)
        command = [str(PIP_AUDIT), "-r", str(requirements), "--no-deps", "--disable-pip"]
        result = subprocess.run(
            [*command, "--progress-spinner", "off", "-f", "json", "-o", str(output)],
            capture_output=True,
            text=True,
        )
        if not output.is_file():
            raise RuntimeError(f"pip-audit failed (exit {result.returncode}): {result.stderr}")
        report: dict[str, Any] = json.loads(output.read_text())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strict", action="store_true", help="fail if any package went unaudited")
    args = parser.parse_args(argv)
    try:
        verdict = judge(run_pip_audit())
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 1 if args.strict else 0
    for line in verdict.lines():
        print(f"audit: {line}")
    return 1 if verdict.failed(args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
