"""grpc.health.v1 and server reflection on the Serve gRPC proxy."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.integration.conftest import Server

pytestmark = pytest.mark.integration

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("service", ["", "imgclf.v1.ClassifierService"])
def test_check_is_serving(server: Server, service: str) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
    assert reply.status == SERVING


def test_check_of_an_unknown_service_is_not_found(server: Server) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    with pytest.raises(grpc.RpcError) as failure:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=30)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


def test_watch_streams_the_status(server: Server) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    stream = health.Watch(health_pb2.HealthCheckRequest(), timeout=30)
    assert next(stream).status == SERVING
    stream.cancel()


def test_reflection_lists_the_classifier_service(server: Server) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (reply,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=30))
    services = {service.name for service in reply.list_services_response.service}
    assert {"imgclf.v1.ClassifierService", "grpc.health.v1.Health"} <= services
