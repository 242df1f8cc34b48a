"""The reliability tests' harness: steady client load (`ClientLoad`), polling (`wait_for`,
`health_status`), and what the tests report: calls sent, succeeded, failed by status code, lost,
and scenario figures (latencies, recovery times, memory). `report` keeps each test's lines for
the "imgclf reliability figures" section that pytest prints at the end of the run (conftest.py)
and writes to .run/reliability-figures.txt; RELIABILITY.md quotes them.

A scenario then reads as: start the load, break something, wait for the recovery, assert:

    with ClientLoad(target, image, singles=6, batches=2, retry=RETRY) as load:
        time.sleep(3)
        os.kill(victim, signal.SIGKILL)
    recovered_s = wait_for(lambda: ..., timeout_s=180)
    assert load.calls.lost == 0 and load.images.lost == 0
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgclf import ClassifierClient, ImgclfError, RetryPolicy, ServedBy

REPORTED: list[tuple[str, str]] = []


def report(scenario: str, text: str) -> None:
    REPORTED.append((scenario, text))
    print(f"\n[{scenario}] {text}")


@dataclass
class Tally:
    """Outcomes of calls by status code ("OK" for success), thread-safe. A call is lost when it
    ended without a result or a status the scenario tells callers to expect (e.g. shed load's
    RESOURCE_EXHAUSTED, which says "retry later" and loses nothing silently)."""

    expected_failures: frozenset[str] = frozenset()
    codes: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, code: str, seconds: float | None = None) -> None:
        with self._lock:
            self.codes[code] += 1
            if seconds is not None:
                self.seconds[code].append(seconds)

    @property
    def sent(self) -> int:
        return sum(self.codes.values())

    @property
    def succeeded(self) -> int:
        return self.codes["OK"]

    @property
    def failed(self) -> dict[str, int]:
        return {code: n for code, n in sorted(self.codes.items()) if code != "OK"}

    @property
    def lost(self) -> int:
        return sum(n for code, n in self.failed.items() if code not in self.expected_failures)

    def percentile_ms(self, code: str, q: float) -> float:
        values = self.seconds.get(code)
        return float(np.percentile(values, q)) * 1000 if values else float("nan")

    def summary(self) -> str:
        return (
            f"sent {self.sent}, succeeded {self.succeeded}, failed {self.failed or 'none'}, "
            f"lost {self.lost}"
        )


# Client retries for scenarios that break a part under load: UNAVAILABLE is retried past the
# seconds Serve needs to route around a dead replica.
RETRY = RetryPolicy(max_attempts=5, initial_backoff_s=0.2, max_backoff_s=2.0)


@dataclass
class ClientLoad:
    """Steady load from the client library while a scenario runs: `singles` threads calling
    Classify and `batches` threads calling ClassifyBatch with `batch` images, each with its own
    client (`retry`: None for no retries), until the block ends, or after `duration_s`.

    `calls` counts every call by status (its seconds too); `images` every batch item; failed
    calls' and items' messages are kept; `served` holds (monotonic time, ServedBy) of each
    Classify answer, `served_in_batches` of each batch item (stamped when its whole call
    returned, which may be after the replica that served it died)."""

    target: str
    image: bytes
    singles: int = 0
    batches: int = 0
    batch: int = 4
    retry: RetryPolicy | None = RETRY
    duration_s: float | None = None
    calls: Tally = field(default_factory=Tally)
    images: Tally = field(default_factory=Tally)
    messages: list[str] = field(default_factory=list)
    served: list[tuple[float, ServedBy]] = field(default_factory=list)
    served_in_batches: list[tuple[float, ServedBy]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> ClientLoad:
        stop_at = None if self.duration_s is None else time.monotonic() + self.duration_s
        self._threads = [
            threading.Thread(target=self._loop, args=(self._classify, stop_at))
            for _ in range(self.singles)
        ] + [
            threading.Thread(target=self._loop, args=(self._classify_batch, stop_at))
            for _ in range(self.batches)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None or self.duration_s is None:
            self._stop.set()
        for thread in self._threads:
            thread.join(timeout=(self.duration_s or 0) + 120)

    def _loop(self, call: Callable[[ClassifierClient], None], stop_at: float | None) -> None:
        with ClassifierClient(self.target, retry=self.retry, timeout=60) as client:
            while not self._stop.is_set() and (stop_at is None or time.monotonic() < stop_at):
                started = time.monotonic()
                try:
                    call(client)
                except ImgclfError as exc:
                    self.calls.record(exc.code.name)
                    self.messages.append(exc.message)
                    continue
                self.calls.record("OK", time.monotonic() - started)

    def _classify(self, client: ClassifierClient) -> None:
        result = client.classify(self.image)
        if result.served_by:
            self.served.append((time.monotonic(), result.served_by))

    def _classify_batch(self, client: ClassifierClient) -> None:
        for item in client.classify_batch([self.image] * self.batch):
            if item.ok:
                self.images.record("OK")
                if item.served_by:
                    self.served_in_batches.append((time.monotonic(), item.served_by))
            else:
                self.images.record(item.code.name)
                self.messages.append(item.message)


def wait_for(
    condition: Callable[[], bool], timeout_s: float, period_s: float = 0.5
) -> float | None:
    """Seconds until `condition()` held, polling every `period_s`; None if it never did."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(period_s)
    return None


def health_status(channel: grpc.Channel, service: str = "") -> str:
    """grpc.health.v1's answer for `service` ("" = the server), or the call's status code."""
    health = health_pb2_grpc.HealthStub(channel)
    try:
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    except grpc.RpcError as exc:
        return exc.code().name  # type: ignore[no-any-return]
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def replica_per_core(client: ClassifierClient, image: bytes, cores: int) -> dict[str, str]:
    """core ids ("0", "2,3") -> the replica that served them, from a ClassifyBatch of
    2 x `cores` images (the ingress spreads a batch over every replica)."""
    items = client.classify_batch([image] * (2 * cores))
    return {
        ",".join(map(str, item.served_by.core_ids)): item.served_by.replica_id
        for item in items
        if item.ok and item.served_by
    }
