"""Stand-ins for Ray's DeploymentHandle of a model deployment (no Ray cluster; named as
such): `classify_share.remote(images, k, slot=...)` runs a test's `behaviour` and returns an
awaitable, cancellable response, and every call is recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any

from imgclf_serve.results import ItemResult, Prediction

Behaviour = Callable[[list[bytes], int | None], Awaitable[list[ItemResult]]]


def ok(image: bytes) -> ItemResult:
    return ItemResult(predictions=(Prediction(image.decode(), 0, 1.0),))


class FakeResponse:
    """Stands in for Ray's DeploymentResponse: awaitable, cancellable."""

    def __init__(self, result: Awaitable[list[ItemResult]]) -> None:
        self._result = result
        self.cancelled = False

    def __await__(self) -> Generator[Any, None, list[ItemResult]]:
        return self._result.__await__()

    def cancel(self) -> None:
        self.cancelled = True


class FakeMethod:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.calls: list[tuple[list[bytes], int | None]] = []
        self.responses: list[FakeResponse] = []

    def remote(self, images: list[bytes], k: int, slot: int | None = None) -> FakeResponse:
        self.calls.append((images, slot))
        response = FakeResponse(self.behaviour(images, slot))
        self.responses.append(response)
        return response


class FakeHandle:
    def __init__(self, behaviour: Behaviour) -> None:
        self.classify_share = FakeMethod(behaviour)
