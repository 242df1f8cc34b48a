"""An image that crashes the replica given it (injected: `crash_on_image_sha256`, as a native
crash in a decoder or runtime would), sent with the client library's retries on: the ingress
re-sends each image of the share once, alone; the crashing image fails alone with INTERNAL
(which clients do not retry), every other image of the batch classifies, and it costs at most
two replicas per call, not (ingress retries x client attempts). Serve replaces them."""

from __future__ import annotations

import hashlib
import time

import pytest

from imgclf import ClassifierClient, InternalError
from tests.conftest import IMAGES_DIR
from tests.integration.conftest import NEURON_CORES, Server, assert_no_internals
from tests.integration.harness import replica_per_core, report, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
LITE0 = "efficientnet-lite0"


def replicas_stopped(server: Server, before: set[int], wait_s: float = 3.0) -> int:
    time.sleep(wait_s)  # a crashed process is gone within moments
    return len(before - set(server.cluster.replica_pids(LITE0)))


def test_an_image_that_crashes_replicas_fails_alone_and_costs_at_most_two(server: Server) -> None:
    poison = (IMAGES_DIR / "kitten_small.jpg").read_bytes()
    crashing = {
        **server.user_config("efficientnet-lite0"),
        "inject_faults": {"crash_on_image_sha256": [hashlib.sha256(poison).hexdigest()]},
    }
    target = server.cluster.grpc_target
    with ClassifierClient(target, timeout=120) as client:  # default retries: 4 attempts
        with server.deployment_options(LITE0, user_config=crashing):
            before = set(server.cluster.replica_pids(LITE0))
            items = client.classify_batch([server.tiger] * 7 + [poison])
            batch_deaths = replicas_stopped(server, before)
            before = set(server.cluster.replica_pids(LITE0))
            with pytest.raises(InternalError) as single:
                client.classify(poison)
            single_deaths = replicas_stopped(server, before)
        recovered_s = wait_for(
            lambda: len(replica_per_core(client, server.tiger, NEURON_CORES)) == NEURON_CORES,
            timeout_s=240,
            period_s=1,
        )
    poisoned = items[-1]
    report(
        "image that crashes replicas",
        f"ClassifyBatch of 7 good images + 1 crashing: {sum(i.ok for i in items[:-1])} of 7 "
        f"classified, the crashing one {poisoned.code.name if not poisoned.ok else 'OK'}; "
        f"replicas stopped: {batch_deaths} for the batch, {single_deaths} for a Classify of "
        f"it (client retries on); all {NEURON_CORES} cores serving again "
        f"{recovered_s and round(recovered_s, 1)} s after the fault was lifted",
    )
    assert all(item.ok and item.top.label == "tiger" for item in items[:-1])
    assert not poisoned.ok and poisoned.code.name == "INTERNAL"
    assert "not retried" in poisoned.message
    assert_no_internals(poisoned.message)
    assert "not retried" in single.value.message
    assert 1 <= batch_deaths <= 2 and 1 <= single_deaths <= 2, (batch_deaths, single_deaths)
    assert recovered_s is not None, "the crashed replicas were not replaced"
