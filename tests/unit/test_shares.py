"""shares.py against a fake deployment handle (no Ray cluster; named as such): what the ingress
does when a replica dies under a share, and when a share straggles."""

from __future__ import annotations

import asyncio

from ray.exceptions import RayActorError

from imgclf_serve.results import ItemResult
from imgclf_serve.settings import HedgingConfig
from imgclf_serve.shares import CRASHED_ALONE, ShareSender
from imgclf_serve.straggler import MIN_SAMPLES, StragglerPolicy
from tests.unit.fake_handles import Behaviour, FakeHandle, ok


def sender(
    behaviour: Behaviour, replicas: int = 4, policy: StragglerPolicy | None = None
) -> tuple[ShareSender, FakeHandle, list[str]]:
    handle, events = FakeHandle(behaviour), []
    policy = policy or StragglerPolicy(HedgingConfig())
    return ShareSender(handle, replicas, policy, events.append), handle, events  # type: ignore[arg-type]


def test_a_dead_replica_sends_each_image_again_alone() -> None:
    async def behaviour(images: list[bytes], slot: int | None) -> list[ItemResult]:
        if len(images) > 1:
            raise RayActorError()
        return [ok(images[0])]

    share_sender, handle, events = sender(behaviour)
    results = asyncio.run(share_sender.send([b"a", b"b", b"c"], 5, slot=7))
    assert [r.predictions[0].label for r in results] == ["a", "b", "c"]
    assert handle.classify_share.calls == [
        ([b"a", b"b", b"c"], 7),
        ([b"a"], 8),  # the slots after the dead one's: the 3 replicas alive beside it
        ([b"b"], 9),
        ([b"c"], 10),
    ]
    assert events == ["replica_died"]


def test_images_sent_again_alone_never_share_a_replica_with_each_other() -> None:
    """A replica merges concurrent requests into one forward pass, so an image that crashes
    it takes along whatever else it holds. Modelled here: 3 live replicas (slot mod 3); a
    replica given the poison image fails every request it holds at that moment."""
    live = 3
    in_flight: dict[int, list[bytes]] = {}
    most_at_once: dict[int, int] = {}

    async def behaviour(images: list[bytes], slot: int | None) -> list[ItemResult]:
        if len(images) > 1:
            raise RayActorError()  # the first replica died under the whole share
        assert slot is not None
        replica = slot % live
        held = in_flight.setdefault(replica, [])
        held.append(images[0])
        most_at_once[replica] = max(most_at_once.get(replica, 0), len(held))
        try:
            await asyncio.sleep(0.01)
            if b"poison" in held:
                raise RayActorError()
            return [ok(images[0])]
        finally:
            held.remove(images[0])

    share_sender, handle, events = sender(behaviour, replicas=live + 1)
    share = [b"a", b"poison", b"b", b"c", b"d"]
    results = asyncio.run(share_sender.send(share, 5, slot=5))
    assert [r.predictions[0].label for r in results if r.error is None] == ["a", "b", "c", "d"]
    assert results[1].error == CRASHED_ALONE
    assert max(most_at_once.values()) == 1
    assert [slot for _, slot in handle.classify_share.calls[1:]] == [6, 7, 8, 6, 7]
    assert events == ["replica_died", "failed_alone"]


def test_an_image_whose_replica_dies_again_alone_fails_alone_and_is_not_retried() -> None:
    async def behaviour(images: list[bytes], slot: int | None) -> list[ItemResult]:
        if b"poison" in images:
            raise RayActorError()
        return [ok(image) for image in images]

    share_sender, handle, events = sender(behaviour)
    results = asyncio.run(share_sender.send([b"a", b"poison"], 5, slot=0))
    assert results[0].predictions[0].label == "a"
    assert results[1].error == CRASHED_ALONE
    assert "not retried" in CRASHED_ALONE.message and CRASHED_ALONE.code.name == "INTERNAL"
    assert len(handle.classify_share.calls) == 3  # the share, then each image once alone
    assert events == ["replica_died", "failed_alone"]


def trained(policy: StragglerPolicy, seconds: float = 0.01) -> StragglerPolicy:
    for _ in range(MIN_SAMPLES):
        policy.finished(seconds, hedged=False)
    return policy


def test_a_late_share_is_hedged_on_the_next_slot_and_the_first_answer_wins() -> None:
    async def behaviour(images: list[bytes], slot: int | None) -> list[ItemResult]:
        await asyncio.sleep(5.0 if slot == 3 else 0.01)  # the replica of slot 3 straggles
        return [ok(f"{image.decode()}@{slot}".encode()) for image in images]

    policy = trained(StragglerPolicy(HedgingConfig(min_delay_s=0.05, max_hedged_fraction=1.0)))
    share_sender, handle, events = sender(behaviour, policy=policy)
    results = asyncio.run(asyncio.wait_for(share_sender.send([b"a"], 5, slot=3), 2.0))
    assert results[0].predictions[0].label == "a@4"
    assert [slot for _, slot in handle.classify_share.calls] == [3, 4]
    assert handle.classify_share.responses[0].cancelled  # the straggler's request is cancelled
    assert events == ["hedged"]


def test_no_hedging_for_single_calls_one_replica_or_a_spent_budget() -> None:
    async def behaviour(images: list[bytes], slot: int | None) -> list[ItemResult]:
        await asyncio.sleep(0.2)
        return [ok(image) for image in images]

    for replicas, slot, fraction in [(4, None, 1.0), (1, 3, 1.0), (4, 3, 0.0)]:
        policy = trained(
            StragglerPolicy(HedgingConfig(min_delay_s=0.0, max_hedged_fraction=fraction))
        )
        share_sender, handle, events = sender(behaviour, replicas, policy)
        asyncio.run(share_sender.send([b"a"], 5, slot=slot))
        assert len(handle.classify_share.calls) == 1 and events == []
