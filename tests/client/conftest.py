"""The client library against FakeClassifierServicer (a fake server; no Ray, no model)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imgclf import ClassifierClient
from tests.client.fake_server import FakeClassifierServicer, FakeServer


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer(FakeClassifierServicer()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(fake: FakeServer) -> Iterator[ClassifierClient]:
    with ClassifierClient(fake.target, timeout=10) as client:
        yield client
