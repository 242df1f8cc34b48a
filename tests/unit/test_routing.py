"""routing.split_evenly and SlotCounter: how a ClassifyBatch call is cut into shares."""

from __future__ import annotations

import math

import pytest

from imgclf_serve.routing import SlotCounter, split_evenly


@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 8, 13, 64, 65, 257])
def test_split_is_ordered_even_and_uses_every_replica(count: int, replicas: int) -> None:
    shares = split_evenly(count, replicas)
    assert [i for share in shares for i in share] == list(range(count))
    assert len(shares) == min(count, replicas)
    sizes = [len(share) for share in shares]
    if sizes:
        assert max(sizes) <= math.ceil(count / replicas)
        assert max(sizes) - min(sizes) <= 1
        assert min(sizes) >= 1


def test_thirteen_over_four_is_4_3_3_3() -> None:
    assert [len(share) for share in split_evenly(13, 4)] == [4, 3, 3, 3]


@pytest.mark.parametrize(("count", "parts"), [(-1, 2), (3, 0)])
def test_invalid_split(count: int, parts: int) -> None:
    with pytest.raises(ValueError):
        split_evenly(count, parts)


def test_slots_are_consecutive_across_calls() -> None:
    counter = SlotCounter(start=0)
    assert counter.reserve(3) == 0
    assert counter.reserve(1) == 3
    assert counter.reserve(4) == 4
    first = SlotCounter().reserve(2)
    assert SlotCounter(start=first).reserve(1) == first
