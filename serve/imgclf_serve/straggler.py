"""When to hedge a ClassifyBatch share: a straggler policy.

A call waits for its slowest share, so one slow replica (a throttled core, a noisy
neighbour, a long GC) delays every batch it has a share of. The ingress sends a share that is
still unanswered after `after_median_multiple` x the median of recent share times to another
replica too, and takes the first answer. A budget keeps hedges to `max_hedged_fraction` of
recent shares: when the whole cluster is slow (overload), hedging would only double the work.
"Recent" is the last WINDOW shares of the last WINDOW_S seconds, so the median follows a
change of load (a burst's long share times do not keep quiet-time hedging off).
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable

from imgclf_serve.settings import HedgingConfig

# Share times the median is taken over, and the fewest before any hedge.
WINDOW = 128
WINDOW_S = 30.0
MIN_SAMPLES = 8


class StragglerPolicy:
    def __init__(self, config: HedgingConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        # (when it finished, seconds it took, whether it was hedged), oldest first
        self._recent: deque[tuple[float, float, bool]] = deque(maxlen=WINDOW)

    def hedge_after(self) -> float | None:
        """Seconds to wait for a share before hedging it; None: do not hedge this one."""
        self._forget_old()
        if not self.config.enabled or len(self._recent) < MIN_SAMPLES:
            return None
        hedged = sum(1 for _, _, was_hedged in self._recent if was_hedged)
        if hedged + 1 > self.config.max_hedged_fraction * len(self._recent):
            return None
        median = statistics.median(seconds for _, seconds, _ in self._recent)
        return max(self.config.min_delay_s, self.config.after_median_multiple * median)

    def finished(self, seconds: float, hedged: bool) -> None:
        """A share was answered after `seconds` (by the first replica to answer)."""
        self._recent.append((self._clock(), seconds, hedged))

    def _forget_old(self) -> None:
        oldest = self._clock() - WINDOW_S
        while self._recent and self._recent[0][0] < oldest:
            self._recent.popleft()
