"""grpc_front.py: Ray's gRPC proxy keeps Ray's internals out of the statuses it sets."""

from __future__ import annotations

import grpc
from ray.exceptions import ActorDiedError, RayActorError
from ray.serve._private import proxy as ray_proxy
from ray.serve.exceptions import BackPressureError

from imgclf_serve import grpc_front


def test_the_proxy_maps_a_dead_ingress_to_unavailable_without_ray_text() -> None:
    grpc_front.install_status_mapping()
    grpc_front.install_status_mapping()  # idempotent: the proxy imports both functions
    status = ray_proxy.get_grpc_response_status  # the name the proxy calls (Ray 2.60)
    died = status(ActorDiedError(), None, "request-1")
    assert died.code == grpc.StatusCode.UNAVAILABLE
    assert died.message == grpc_front.INGRESS_STOPPED
    assert status(RayActorError(), None, "r").code == grpc.StatusCode.UNAVAILABLE
    crashed = status(RuntimeError("at /srv/app.py line 3, pid=42"), None, "r")
    assert crashed.code == grpc.StatusCode.INTERNAL
    assert crashed.message == grpc_front.INTERNAL_ERROR
    # Ray's own mapping of everything else is kept.
    shed = status(BackPressureError(num_queued_requests=5, max_queued_requests=4), None, "r")
    assert shed.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status(TimeoutError(), 3.0, "r").code == grpc.StatusCode.DEADLINE_EXCEEDED
