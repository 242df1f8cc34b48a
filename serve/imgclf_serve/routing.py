"""Spreading a ClassifyBatch call over every replica of a model.

The ingress cuts N images into min(N, R) shares whose sizes differ by at most one and tags
each share with a `slot`, consecutive within a call. ShareRouter sends slot s to replica
s mod R in a stable order of replica ids, so one call's shares land on distinct replicas and
no replica serves more than ceil(N/R) of its images. The first slot of each call moves on,
so small batches do not all start on the same replica.

Ray's default router (power of two choices) picks per request and does not spread one
call's shares evenly; single Classify calls (no slot) are still routed that way here.

Ray 2.60's RequestRouter hands a chosen replica to the pending request with the same
internal request id, but every handle call made while serving one gRPC request inherits that
request's id: with a fan-out, all but one share would wait forever. ShareRouter matches the
exact pending request instead (`_fulfill_next_pending_request`, a private hook of the pinned
Ray version; tests/integration/test_batch_spread.py fails if it changes).
"""

from __future__ import annotations

import itertools
import random

from ray.serve._private.common import RequestMetadata
from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

SLOT_KWARG = "slot"


def split_evenly(count: int, parts: int) -> list[range]:
    """Cut range(count) into min(count, parts) consecutive ranges whose lengths differ by at
    most one, longer ones first."""
    if count < 0 or parts < 1:
        raise ValueError(f"cannot split {count} items into {parts} parts")
    parts = min(count, parts)
    if parts == 0:
        return []
    base, extra = divmod(count, parts)
    bounds = [0]
    for index in range(parts):
        bounds.append(bounds[-1] + base + (1 if index < extra else 0))
    return [range(start, stop) for start, stop in itertools.pairwise(bounds)]


class SlotCounter:
    """Hands out consecutive slots; each call reserves as many as it has shares. Each ingress
    replica starts at a random slot, so their small batches do not all start on one replica."""

    def __init__(self, start: int | None = None) -> None:
        self._next = random.randrange(1 << 16) if start is None else start

    def reserve(self, count: int) -> int:
        first = self._next
        self._next += count
        return first


class ShareRouter(RequestRouter):
    """Routes a request with a `slot` keyword to replica slot mod R, waiting for it if it is
    full (as the other replicas are then busy with the same call's other shares); requests
    without a slot by power of two choices. R is the number of running replicas, so a share
    whose replica died goes to a live one."""

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if not candidate_replicas:
            return []
        if pending_request is not None:
            # Back off between rounds when every replica is full, instead of spinning.
            pending_request.routing_context.should_backoff = True
        slot = pending_request.kwargs.get(SLOT_KWARG) if pending_request is not None else None
        if slot is None:
            return [random.sample(candidate_replicas, min(2, len(candidate_replicas)))]
        ordered = sorted(candidate_replicas, key=lambda replica: replica.replica_id.unique_id)
        return [[ordered[slot % len(ordered)]]]

    def _fulfill_next_pending_request(
        self, replica: RunningReplica, request_metadata: RequestMetadata | None = None
    ) -> None:
        for pending in self._pending_requests_to_fulfill:
            if pending.metadata is request_metadata and not pending.future.done():
                self._cancel_routing_task_for_pending_request(pending)
                self._record_queue_wait_time(pending)
                pending.future.set_result(replica)
                self._remove_pending_request_from_indices(pending)
                return
