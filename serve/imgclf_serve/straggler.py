"""When to hedge a ClassifyBatch share: a straggler policy.

A call waits for its slowest share, so one slow replica (a throttled core, a noisy
neighbour, a long GC) delays every batch it has a share of. The ingress sends a share that is
still unanswered after `after_median_multiple` x the median of recent share times to another
replica too, and takes the first answer. A budget keeps hedges to `max_hedged_fraction` of
recent shares: when the whole cluster is slow (overload), hedging would only double the work.
"""

from __future__ import annotations

import statistics
from collections import deque

from imgclf_serve.settings import HedgingConfig

# Share times the median is taken over, and the fewest before any hedge.
WINDOW = 128
MIN_SAMPLES = 8


class StragglerPolicy:
    def __init__(self, config: HedgingConfig) -> None:
        self.config = config
        self._seconds: deque[float] = deque(maxlen=WINDOW)
        self._recent: deque[bool] = deque(maxlen=WINDOW)  # was each recent share hedged

    def hedge_after(self) -> float | None:
        """Seconds to wait for a share before hedging it; None: do not hedge this one."""
        if not self.config.enabled or len(self._seconds) < MIN_SAMPLES:
            return None
        hedged = sum(self._recent)
        if hedged + 1 > self.config.max_hedged_fraction * len(self._recent):
            return None
        median = statistics.median(self._seconds)
        return max(self.config.min_delay_s, self.config.after_median_multiple * median)

    def finished(self, seconds: float, hedged: bool) -> None:
        """A share was answered after `seconds` (by the first replica to answer)."""
        self._seconds.append(seconds)
        self._recent.append(hedged)
