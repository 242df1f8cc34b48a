"""What the reliability tests report: calls sent, succeeded, failed by status code, lost, and
scenario figures (latencies, recovery times, memory). `report` keeps each test's lines for the
"imgclf reliability figures" section that pytest prints at the end of the run (conftest.py)
and writes to .run/reliability-figures.txt; RELIABILITY.md quotes them."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

REPORTED: list[tuple[str, str]] = []


def report(scenario: str, text: str) -> None:
    REPORTED.append((scenario, text))
    print(f"\n[{scenario}] {text}")


@dataclass
class Tally:
    """Outcomes of calls by status code ("OK" for success), thread-safe. A call is lost when it
    ended without a result or a status the scenario tells callers to expect (e.g. shed load's
    RESOURCE_EXHAUSTED, which says "retry later" and loses nothing silently)."""

    expected_failures: frozenset[str] = frozenset()
    codes: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, code: str, seconds: float | None = None) -> None:
        with self._lock:
            self.codes[code] += 1
            if seconds is not None:
                self.seconds[code].append(seconds)

    @property
    def sent(self) -> int:
        return sum(self.codes.values())

    @property
    def succeeded(self) -> int:
        return self.codes["OK"]

    @property
    def failed(self) -> dict[str, int]:
        return {code: n for code, n in sorted(self.codes.items()) if code != "OK"}

    @property
    def lost(self) -> int:
        return sum(n for code, n in self.failed.items() if code not in self.expected_failures)

    def percentile_ms(self, code: str, q: float) -> float:
        values = self.seconds.get(code)
        return float(np.percentile(values, q)) * 1000 if values else float("nan")

    def summary(self) -> str:
        return (
            f"sent {self.sent}, succeeded {self.succeeded}, failed {self.failed or 'none'}, "
            f"lost {self.lost}"
        )
