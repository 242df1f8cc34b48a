"""scripts/audit.py's verdict on pip-audit reports (report shapes as pip-audit 2.x writes them
with `-f json`): a fixable vulnerability fails, one without a fix is listed, and packages the
service could not look up are counted (and fail only with --strict)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("audit", ROOT / "scripts" / "audit.py")
assert spec and spec.loader
audit = importlib.util.module_from_spec(spec)
sys.modules["audit"] = audit  # dataclasses look their module up there
spec.loader.exec_module(audit)

FIXABLE = {
    "id": "GHSA-9wx4-h78v-vm56",
    "fix_versions": ["2.32.0"],
    "aliases": ["CVE-2024-35195"],
    "description": "...",
}
UNFIXED = {"id": "PYSEC-2023-0001", "fix_versions": [], "aliases": [], "description": "..."}


def report(*dependencies: dict) -> dict:  # type: ignore[type-arg]
    return {"dependencies": list(dependencies), "fixes": []}


def test_a_vulnerability_with_a_fix_fails_the_audit() -> None:
    verdict = audit.judge(
        report(
            {"name": "requests", "version": "2.31.0", "vulns": [FIXABLE]},
            {"name": "grpcio", "version": "1.85.3", "vulns": []},
        )
    )
    assert verdict.failed(strict=False)
    assert verdict.audited == 2
    assert verdict.fixable == [
        "requests 2.31.0: GHSA-9wx4-h78v-vm56, CVE-2024-35195; fixed in 2.32.0"
    ]


def test_a_vulnerability_without_a_fix_is_listed_but_passes() -> None:
    verdict = audit.judge(report({"name": "ray", "version": "2.60.0", "vulns": [UNFIXED]}))
    assert not verdict.failed(strict=True)
    assert verdict.unfixable == ["ray 2.60.0: PYSEC-2023-0001"]
    assert any("no fix released" in line for line in verdict.lines())


def test_packages_the_service_could_not_look_up_fail_only_when_strict() -> None:
    skipped = {"name": "torch", "skip_reason": "Dependency not found on PyPI and could not be ..."}
    verdict = audit.judge(report(skipped, {"name": "six", "version": "1.16.0", "vulns": []}))
    assert verdict.skipped == ["torch"]
    assert not verdict.failed(strict=False)
    assert verdict.failed(strict=True)
    assert verdict.lines()[0] == "audited 1 of 2 installed packages"
