"""A client deadline shorter than the queue wait: the call ends with DEADLINE_EXCEEDED, Ray Serve
cancels it down to the replica, and the replica drops the image before its forward pass
(counted in ray_imgclf_skipped_images_total); the ingress counts the call as CANCELLED."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request

import grpc
import pytest

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from tests.integration.conftest import Server
from tests.integration.harness import report

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def metric_sum(server: Server, name: str, labels: str = "") -> float:
    url = f"http://127.0.0.1:{server.cluster.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    pattern = rf"^{name}\{{([^}}]*)\}} (\S+)$"
    return sum(float(v) for tags, v in re.findall(pattern, text, re.M) if labels in tags)


def test_an_expired_call_is_cancelled_and_costs_no_device_time(server: Server) -> None:
    skipped_before = metric_sum(server, "ray_imgclf_skipped_images_total")
    cancelled_before = metric_sum(server, "ray_imgclf_requests_total", 'code="CANCELLED"')

    async def main() -> list[str]:
        async with grpc.aio.insecure_channel(server.cluster.grpc_target) as channel:
            stub = pb_grpc.ClassifierServiceStub(channel)
            queue = [
                asyncio.ensure_future(
                    stub.Classify(pb.ClassifyRequest(image=server.tiger), timeout=120)
                )
                for _ in range(48)
            ]  # keeps every replica's queue about a second deep
            await asyncio.sleep(0.3)
            codes = []
            for _ in range(6):
                try:
                    await stub.Classify(pb.ClassifyRequest(image=server.tiger), timeout=0.15)
                    codes.append("OK")
                except grpc.aio.AioRpcError as exc:
                    codes.append(exc.code().name)
            results = await asyncio.gather(*queue, return_exceptions=True)
            assert not [r for r in results if isinstance(r, BaseException)]  # the rest finished
            await stub.Classify(pb.ClassifyRequest(image=server.tiger), timeout=60)  # still serving
            return codes

    codes = asyncio.run(main())
    expired = codes.count("DEADLINE_EXCEEDED")
    assert expired >= 1, codes
    deadline = time.monotonic() + 30  # metrics are exported every second in the test cluster
    while time.monotonic() < deadline:
        skipped = metric_sum(server, "ray_imgclf_skipped_images_total") - skipped_before
        cancelled = metric_sum(server, "ray_imgclf_requests_total", 'code="CANCELLED"')
        if skipped >= 1 and cancelled - cancelled_before >= 1:
            break
        time.sleep(1)
    report(
        "deadlines",
        f"48 calls queued, then {len(codes)} with a 150 ms deadline: {expired} ended "
        f"DEADLINE_EXCEEDED, {codes.count('OK')} OK; {skipped:g} images skipped by replicas "
        "(no forward pass spent on them)",
    )
    assert 1 <= skipped <= expired
    assert cancelled - cancelled_before >= 1
