"""The gRPC services Ray Serve's fronts serve (the config's `grpc_servicer_functions`), and
the status Ray's own gRPC proxy gives a call that failed outside imgclf's code.

When an ingress replica dies during a call, Ray 2.60's proxy (the `proxy` front, and HAProxy's
backup server in the `haproxy` front) answers INTERNAL with the text of Ray's exception: actor
id, PID, node address. The proxy has no hook for this, so importing these servicer functions
(the proxy does, at start) wraps its `get_grpc_response_status`: a dead actor becomes
UNAVAILABLE with a short message (clients retry it), any other INTERNAL keeps its code and
loses its text. A private function of the pinned Ray; tests/unit/test_grpc_front.py fails if
it moves, tests/integration/test_fronts.py kills an ingress under load.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from ray.exceptions import RayActorError
from ray.serve._private import proxy as ray_proxy
from ray.serve._private.proxy_request_response import ResponseStatus

from imgclf.v1 import classifier_service_pb2_grpc
from imgclf_serve.inference import grpc_service_pb2_grpc as open_inference_pb2_grpc

INGRESS_STOPPED = "the server's ingress replica stopped during this call; retry"
INTERNAL_ERROR = "internal error; the server log has the details"
_MARK = "_imgclf_mapped"


def add_classifier_servicer(servicer: Any, server: grpc.Server) -> None:
    install_status_mapping()
    classifier_service_pb2_grpc.add_ClassifierServiceServicer_to_server(servicer, server)


def add_open_inference_servicer(servicer: Any, server: grpc.Server) -> None:
    install_status_mapping()
    open_inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)


def add_health_servicer(servicer: Any, server: grpc.Server) -> None:
    install_status_mapping()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)


def install_status_mapping() -> None:
    # Ray's private function, replaced on purpose (the module docstring says why).
    original = ray_proxy.get_grpc_response_status  # type: ignore[attr-defined]
    if not getattr(original, _MARK, False):
        ray_proxy.get_grpc_response_status = _mapped(original)  # type: ignore[attr-defined]


def _mapped(original: Callable[..., ResponseStatus]) -> Callable[..., ResponseStatus]:
    @functools.wraps(original)
    def status(exc: BaseException, *args: Any, **kwargs: Any) -> ResponseStatus:
        if isinstance(exc, RayActorError):
            return ResponseStatus(
                grpc.StatusCode.UNAVAILABLE, is_error=True, message=INGRESS_STOPPED
            )
        found = original(exc, *args, **kwargs)
        if found.code == grpc.StatusCode.INTERNAL:
            return ResponseStatus(grpc.StatusCode.INTERNAL, is_error=True, message=INTERNAL_ERROR)
        return found

    setattr(status, _MARK, True)
    return status
