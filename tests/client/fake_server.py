"""FakeClassifierServicer: a stand-in imgclf server for the client library's tests.

It is a fake, named as such: an in-process grpc.aio server that speaks imgclf.v1 and
grpc.health.v1 but runs no model. It answers by rules the tests can read:
- an image's bytes are its label (b"cat" -> one prediction "cat", probability 1.0);
- an image starting with b"bad" fails: Classify aborts INVALID_ARGUMENT with reason
  INVALID_IMAGE, ClassifyBatch fails only that item;
- model "missing" is NOT_FOUND with reason MODEL_NOT_FOUND;
- `fail_next` statuses are returned, one per call, before any call succeeds;
- `delay_s` delays every call;
- `gate` holds each ClassifyBatch call until that many are in flight at once (or 3 s pass),
  so a test sees the client's concurrency without depending on timing.
It records what each call carried (metadata, deadline, batch size) for the tests to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc

REASON_KEY = "imgclf-error-reason"
GATE_TIMEOUT_S = 3.0


@dataclass
class Call:
    method: str
    metadata: dict[str, str]
    time_remaining: float | None
    images: int


@dataclass
class FakeClassifierServicer(pb_grpc.ClassifierServiceServicer):
    max_images_per_batch: int = 256
    fail_next: list[grpc.StatusCode] = field(default_factory=list)
    delay_s: float = 0.0
    gate: int = 0
    released_upto: int = 0
    health_status: int = health_pb2.HealthCheckResponse.SERVING
    health_services: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def Classify(self, request: pb.ClassifyRequest, context: Any) -> pb.ClassifyResponse:
        async with self._call("Classify", context, 1, request.model):
            if request.image.startswith(b"bad"):
                await _abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "INVALID_IMAGE",
                    "cannot decode: not a recognised image format",
                )
            return pb.ClassifyResponse(
                model=request.model or "fake-model",
                predictions=_predictions(request.image),
                served_by=pb.ServedBy(
                    replica_id="fake-replica",
                    device_kind=pb.DEVICE_KIND_NEURON_CORE,
                    core_ids=[3],
                    backend=pb.BACKEND_CPU,
                ),
            )

    async def ClassifyBatch(
        self, request: pb.ClassifyBatchRequest, context: Any
    ) -> pb.ClassifyBatchResponse:
        async with self._call("ClassifyBatch", context, len(request.images), request.model):
            if len(request.images) > self.max_images_per_batch:
                await _abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "INVALID_ARGUMENT",
                    f"{len(request.images)} images in one call, over the limit",
                )
            items = []
            for index, image in enumerate(request.images):
                if image.startswith(b"bad"):
                    error = pb.ItemError(
                        code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                        message="cannot decode",
                        index=index,
                        reason=pb.ERROR_REASON_INVALID_IMAGE,
                    )
                    items.append(pb.ClassifyBatchItem(error=error))
                else:
                    items.append(pb.ClassifyBatchItem(predictions=_predictions(image)))
            return pb.ClassifyBatchResponse(model=request.model or "fake-model", items=items)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Any
    ) -> pb.ListModelsResponse:
        async with self._call("ListModels", context, 0, ""):
            model = pb.ModelInfo(
                name="fake-model",
                input_height=224,
                input_width=224,
                num_classes=1000,
                backend=pb.BACKEND_CPU,
                device_kind=pb.DEVICE_KIND_CPU,
                replicas=2,
                max_batch_size=8,
            )
            limits = pb.Limits(
                max_images_per_batch=self.max_images_per_batch,
                max_image_bytes=1 << 20,
                max_image_pixels=1 << 24,
                max_request_bytes=1 << 26,
            )
            return pb.ListModelsResponse(models=[model], default_model="fake-model", limits=limits)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    @contextlib.asynccontextmanager
    async def _call(self, method: str, context: Any, images: int, model: str) -> Any:
        metadata = {key: value for key, value in context.invocation_metadata()}
        self.calls.append(Call(method, metadata, context.time_remaining(), images))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if method == "ClassifyBatch" and self.gate:
                await self._wait_for_company(len(self.calls))
            if self.fail_next:
                code = self.fail_next.pop(0)
                await _abort(context, code, "", f"injected {code.name}")
            if model == "missing":
                await _abort(
                    context,
                    grpc.StatusCode.NOT_FOUND,
                    "MODEL_NOT_FOUND",
                    "model 'missing' is not deployed",
                )
            yield
        finally:
            self.in_flight -= 1

    async def _wait_for_company(self, arrival: int) -> None:
        """Until `gate` calls were in flight together at or after this call's arrival."""
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.in_flight >= self.gate:
                self.released_upto = len(self.calls)
            if self.released_upto >= arrival:
                return
            await asyncio.sleep(0.005)


async def _abort(context: Any, code: grpc.StatusCode, reason: str, message: str) -> None:
    if reason:
        context.set_trailing_metadata(((REASON_KEY, f"ERROR_REASON_{reason}"),))
    await context.abort(code, message)


def _predictions(image: bytes) -> list[pb.Prediction]:
    return [pb.Prediction(label=image.decode(errors="replace"), class_index=0, probability=1.0)]


class FakeHealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self, servicer: FakeClassifierServicer) -> None:
        self._servicer = servicer

    async def Check(self, request: Any, context: Any) -> health_pb2.HealthCheckResponse:
        self._servicer.health_services.append(request.service)
        return health_pb2.HealthCheckResponse(status=self._servicer.health_status)


class FakeServer:
    """Runs the fake servicers on a grpc.aio server in a thread with its own event loop, so
    both the sync and the asyncio clients can call it."""

    def __init__(
        self,
        servicer: FakeClassifierServicer,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self.servicer = servicer
        self._credentials = credentials
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        self.port = self._run(self._start)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._run(lambda: self._server.stop(grace=None))  # type: ignore[union-attr]
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _start(self) -> int:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)])
        pb_grpc.add_ClassifierServiceServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(FakeHealthServicer(self.servicer), server)
        if self._credentials is None:
            port = server.add_insecure_port("127.0.0.1:0")
        else:
            port = server.add_secure_port("127.0.0.1:0", self._credentials)
        await server.start()
        self._server = server
        return port

    def _run(self, make: Callable[[], Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=10)
