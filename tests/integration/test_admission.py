"""Admission by work: floods of ClassifyBatch(256) of tiny images, plus a trickle of Classify
calls with deadlines. Calls beyond the images in flight allowed (per ingress, per replica) are
refused with RESOURCE_EXHAUSTED before anything is decoded; an admitted call waits at most for
the images admitted ahead of it on its replica, so its p99 stays within that bound measured in
the same run; the cluster's memory stays bounded; the server serves afterwards. Reports calls
by outcome, p50/p99 of admitted and refused calls, the bound and RSS."""

from __future__ import annotations

import io
import math
import threading
import time

import grpc
import pytest
from PIL import Image

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from tests.integration.conftest import (
    INGRESS_MAX_IMAGES,
    NEURON_CORES,
    REPLICA_MAX_IMAGES,
    Server,
    assert_no_internals,
)
from tests.integration.harness import Tally, report
from tests.integration.test_overload import MB_PER_GIB, RssSampler

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.reliability]
FLOODERS = 3
FLOOD_S = 15.0
BATCH = 256
TRICKLE_DEADLINE_S = 30.0
MAX_BATCH_SIZE = 8  # the Serve config's user_config.max_batch_size


def item_code(item: pb.ClassifyBatchItem) -> str:
    if not item.HasField("error"):
        return "OK"
    return next(code.name for code in grpc.StatusCode if code.value[0] == item.error.code)


def tiny_png(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (n % 256, 64, 128)).save(out, format="PNG")
    return out.getvalue()


def test_floods_of_large_batches_are_refused_by_images_in_flight(server: Server) -> None:
    target = server.cluster.grpc_target
    images = [tiny_png(n) for n in range(BATCH)]
    floods = Tally(expected_failures=frozenset({"RESOURCE_EXHAUSTED"}))
    trickle = Tally(expected_failures=frozenset({"RESOURCE_EXHAUSTED"}))
    # A replica over its own bound refuses its share's images (each RESOURCE_EXHAUSTED).
    flood_images = Tally(expected_failures=frozenset({"RESOURCE_EXHAUSTED"}))
    stop_at = time.monotonic() + FLOOD_S

    def flood() -> None:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.ClassifierServiceStub(channel)
            while time.monotonic() < stop_at:
                started = time.monotonic()
                try:
                    reply = stub.ClassifyBatch(pb.ClassifyBatchRequest(images=images), timeout=120)
                except grpc.RpcError as exc:
                    floods.record(exc.code().name, time.monotonic() - started)
                    assert_no_internals(exc.details())
                    time.sleep(0.05)
                    continue
                floods.record("OK", time.monotonic() - started)
                for item in reply.items:
                    flood_images.record(item_code(item))

    def trickle_calls() -> None:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.ClassifierServiceStub(channel)
            while time.monotonic() < stop_at:
                started = time.monotonic()
                try:
                    stub.Classify(
                        pb.ClassifyRequest(image=server.tiger), timeout=TRICKLE_DEADLINE_S
                    )
                    trickle.record("OK", time.monotonic() - started)
                except grpc.RpcError as exc:
                    trickle.record(exc.code().name, time.monotonic() - started)
                    assert_no_internals(exc.details())
                time.sleep(0.2)

    sampler = RssSampler(server)
    rss_before = sampler.total()
    sampler.start()
    started = time.monotonic()
    threads = [threading.Thread(target=flood) for _ in range(FLOODERS)]
    threads.append(threading.Thread(target=trickle_calls))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=FLOOD_S + 180)
    elapsed = time.monotonic() - started
    rss_peak = sampler.stop()

    # The bound: images ahead of a call on its replica (its admission bound, or one idle-
    # admitted share of a 256-image call) plus the batch it joins, at the rate each replica
    # served during the flood; 1.5x for the spread of this shared 2-vCPU machine.
    served_per_replica = (flood_images.succeeded + trickle.succeeded) / elapsed / NEURON_CORES
    ahead = max(REPLICA_MAX_IMAGES, math.ceil(BATCH / NEURON_CORES)) + MAX_BATCH_SIZE
    bound_s = 1.5 * ahead / served_per_replica
    trickle_p99 = trickle.percentile_ms("OK", 99)
    flood_p99 = floods.percentile_ms("OK", 99)
    report(
        "admission by images",
        f"{FLOODERS} callers looping ClassifyBatch({BATCH}) of 8x8 PNGs + 1 Classify every "
        f"0.2 s for {FLOOD_S:.0f} s; bounds {INGRESS_MAX_IMAGES} images per ingress, "
        f"{REPLICA_MAX_IMAGES} per replica; batches: {floods.summary()}, p50/p99 ms admitted "
        f"{floods.percentile_ms('OK', 50):.0f}/{flood_p99:.0f}, refused "
        f"{floods.percentile_ms('RESOURCE_EXHAUSTED', 50):.0f}/"
        f"{floods.percentile_ms('RESOURCE_EXHAUSTED', 99):.0f}; Classify: {trickle.summary()}, "
        f"p50/p99 ms admitted {trickle.percentile_ms('OK', 50):.0f}/{trickle_p99:.0f}; "
        f"batch images: {flood_images.summary()}; "
        f"served {served_per_replica:.1f} img/s per replica, so the bound on an admitted "
        f"call is {bound_s * 1000:.0f} ms; cluster RSS {rss_before / MB_PER_GIB:.2f} GiB "
        f"before, peak {rss_peak / MB_PER_GIB:.2f} GiB",
    )
    assert floods.lost == 0 and trickle.lost == 0, (floods.codes, trickle.codes)
    assert floods.codes["RESOURCE_EXHAUSTED"] > 0, "no call was refused: admission not tested"
    assert floods.succeeded > 0 and trickle.succeeded > 0
    assert flood_images.lost == 0, flood_images.codes
    assert trickle_p99 <= bound_s * 1000, (trickle_p99, bound_s)
    assert flood_p99 <= bound_s * 1000, (flood_p99, bound_s)
    # Refusals come before any decode: far faster than an admitted call.
    assert floods.percentile_ms("RESOURCE_EXHAUSTED", 50) < floods.percentile_ms("OK", 50) / 2
    assert rss_peak - rss_before < MB_PER_GIB
    stub = server.stub
    assert stub.Classify(pb.ClassifyRequest(image=server.tiger), timeout=60).predictions
