"""straggler.py: when a ClassifyBatch share is sent to a second replica."""

from __future__ import annotations

import pytest

from imgclf_serve.settings import HedgingConfig
from imgclf_serve.straggler import MIN_SAMPLES, WINDOW_S, StragglerPolicy


def test_no_hedge_until_enough_shares_were_timed() -> None:
    policy = StragglerPolicy(HedgingConfig(max_hedged_fraction=1.0))
    for _ in range(MIN_SAMPLES - 1):
        policy.finished(0.1, hedged=False)
    assert policy.hedge_after() is None
    policy.finished(0.1, hedged=False)
    assert policy.hedge_after() == 0.1 * 3.0


def test_delay_is_a_multiple_of_the_median_with_a_floor() -> None:
    policy = StragglerPolicy(HedgingConfig(after_median_multiple=2.0, min_delay_s=0.05))
    for seconds in [0.001] * 20 + [5.0] * 5:  # a few outliers do not move the median
        policy.finished(seconds, hedged=False)
    assert policy.hedge_after() == 0.05
    policy = StragglerPolicy(HedgingConfig(after_median_multiple=2.0, min_delay_s=0.0))
    for seconds in [0.2] * 20 + [5.0] * 5:
        policy.finished(seconds, hedged=False)
    assert policy.hedge_after() == 0.4


def test_hedges_stay_within_their_budget() -> None:
    policy = StragglerPolicy(HedgingConfig(max_hedged_fraction=0.1))
    for _ in range(20):
        policy.finished(0.1, hedged=False)
    assert policy.hedge_after() is not None  # 1 of 21 is within 10 %
    policy.finished(0.3, hedged=True)
    policy.finished(0.3, hedged=True)
    assert policy.hedge_after() is None  # 3 of 23 would not be
    for _ in range(10):
        policy.finished(0.1, hedged=False)
    assert policy.hedge_after() is not None


def test_disabled_never_hedges() -> None:
    policy = StragglerPolicy(HedgingConfig(enabled=False))
    for _ in range(50):
        policy.finished(0.1, hedged=False)
    assert policy.hedge_after() is None


def test_old_share_times_are_forgotten() -> None:
    """A burst's long share times must not keep hedging off once traffic is quiet again."""
    now = [0.0]
    policy = StragglerPolicy(HedgingConfig(min_delay_s=0.0), clock=lambda: now[0])
    for _ in range(100):
        policy.finished(1.0, hedged=False)  # a burst: every share took a second
    now[0] = 10.0
    for _ in range(MIN_SAMPLES):
        policy.finished(0.1, hedged=False)  # quiet: shares take 0.1 s
    assert policy.hedge_after() == 3.0  # the burst still dominates the window
    now[0] = 10.0 + WINDOW_S - 5.0
    assert policy.hedge_after() == pytest.approx(0.3)  # the burst is older than WINDOW_S
    now[0] = 100.0
    assert policy.hedge_after() is None  # nothing recent: too few samples to judge
