"""imgclf's own metrics, defined once.

`ray.serve.metrics` adds the `deployment`, `replica` and `application` tags and exports them
on Ray's metrics port (Prometheus text, `--metrics-export-port`), beside Ray's `ray_serve_*`
families. Ray prefixes every name with `ray_`: `imgclf_requests` is scraped as
`ray_imgclf_requests_total`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Final

from ray.serve.metrics import Counter, Gauge, Histogram

# 1 ms to 10 s, about three buckets a decade.
LATENCY_BUCKETS_S: Final = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
]  # fmt: skip
BATCH_SIZE_BUCKETS: Final = [1, 2, 4, 8, 16, 32, 64, 128, 256]
FILL_RATIO_BUCKETS: Final = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]

OK: Final = "OK"
CANCELLED: Final = "CANCELLED"
UNKNOWN_MODEL: Final = "unknown"
# The `protocol` label: imgclf's own API, or the Open Inference Protocol (KServe v2 / Triton).
IMGCLF_V1: Final = "imgclf.v1"
OPEN_INFERENCE: Final = "open-inference-v2"


GAUGE_REFRESH_S: Final = 1.0


class _HeldGauges:
    """Ray 2.60 drops a gauge's series about two export intervals after its last set() (the
    metrics agent's gauge TTL), so a value set once at start-up would vanish. This sets the
    last value of each gauge again every second, from a daemon thread, while the process lives.
    """

    def __init__(self) -> None:
        self._last: dict[tuple[int, tuple[tuple[str, str], ...]], tuple[Gauge, float]] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._refresh, name="imgclf-gauges", daemon=True).start()

    def set(self, gauge: Gauge, value: float, tags: dict[str, str] | None = None) -> None:
        key = (id(gauge), tuple(sorted((tags or {}).items())))
        with self._lock:
            self._last[key] = (gauge, value)
        gauge.set(value, dict(tags) if tags else None)

    def _refresh(self) -> None:
        while True:
            time.sleep(GAUGE_REFRESH_S)
            with self._lock:
                held = list(self._last.items())
            for (_, tags), (gauge, value) in held:
                gauge.set(value, dict(tags) or None)


class IngressMetrics:
    """Calls, images and latency per protocol, RPC, model and status code, seen at the gRPC
    edge."""

    def __init__(self) -> None:
        keys = ("protocol", "rpc", "model", "code")
        self._requests = Counter(
            "imgclf_requests",
            "Calls answered, by protocol (imgclf.v1, open-inference-v2), RPC, model and gRPC "
            "status code.",
            keys,
        )
        self._images = Counter(
            "imgclf_images",
            "Images answered, by protocol, RPC, model and status code (a batch item's own code).",
            keys,
        )
        self._latency = Histogram(
            "imgclf_request_latency_seconds",
            "Time from the call reaching the ingress to its answer, by protocol, RPC, model "
            "and code.",
            LATENCY_BUCKETS_S,
            keys,
        )
        self._in_flight = Gauge(
            "imgclf_requests_in_flight", "Calls the ingress is working on, by RPC.", ("rpc",)
        )
        self._share_events = Counter(
            "imgclf_share_events",
            "Shares of calls sent again: `hedged` (a straggler's share sent to a second "
            "replica), `replica_died` (its images re-sent one by one), `failed_alone` (an image "
            "whose replica stopped again when sent alone; it failed with INTERNAL).",
            ("model", "event"),
        )
        self._in_flight_count: Tally[str] = Tally()
        self._gauges = _HeldGauges()

    def share_event(self, model: str, event: str) -> None:
        self._share_events.inc(1, {"model": model, "event": event})

    def started(self, rpc: str) -> None:
        self._in_flight_count[rpc] += 1
        self._gauges.set(self._in_flight, self._in_flight_count[rpc], {"rpc": rpc})

    def finished(
        self,
        rpc: str,
        protocol: str,
        model: str,
        code: str,
        image_codes: Iterable[str],
        seconds: float,
    ) -> None:
        self._in_flight_count[rpc] -= 1
        self._gauges.set(self._in_flight, self._in_flight_count[rpc], {"rpc": rpc})
        tags = {"protocol": protocol, "rpc": rpc, "model": model, "code": code}
        self._requests.inc(1, tags)
        self._latency.observe(seconds, tags)
        for image_code, count in Tally(image_codes).items():
            self._images.inc(count, {**tags, "code": image_code})


class ReplicaMetrics:
    """Where a replica's time goes, per stage, and how busy its core is."""

    def __init__(self, model: str, device: str, core: str) -> None:
        self._stage = Histogram(
            "imgclf_stage_seconds",
            "Time per image in each stage: decode (decode + preprocess), queue (waiting for "
            "a batch), postprocess (softmax + top-k); forward is per batch.",
            LATENCY_BUCKETS_S,
            ("model", "stage"),
        )
        self._batch_size = Histogram(
            "imgclf_batch_size",
            "Images per forward pass on the device.",
            BATCH_SIZE_BUCKETS,
            ("model", "device", "core"),
        )
        self._fill = Histogram(
            "imgclf_batch_fill_ratio",
            "Images per forward pass over the configured max_batch_size.",
            FILL_RATIO_BUCKETS,
            ("model",),
        )
        self._core_images = Counter(
            "imgclf_core_images", "Images run on the core.", ("model", "device", "core")
        )
        self._core_busy = Counter(
            "imgclf_core_busy_seconds",
            "Seconds the core spent in forward passes; its rate is the core's utilisation.",
            ("model", "device", "core"),
        )
        self._skipped = Counter(
            "imgclf_skipped_images",
            "Images dropped before their forward pass because the caller gave up (deadline "
            "passed or call cancelled) while they waited.",
            ("model",),
        )
        self._load = Gauge(
            "imgclf_model_load_seconds", "Time to load the model at replica start.", ("model",)
        )
        self._warm_up = Gauge(
            "imgclf_model_warmup_seconds",
            "Time of the last warm-up pass (replica start or batch size change).",
            ("model",),
        )
        self._model = {"model": model}
        core_tags = {"model": model, "device": device, "core": core}
        # Ray adds its serve tags to the dict it is given, so each metric gets its own copy.
        for metric in (self._batch_size, self._core_images, self._core_busy):
            metric.set_default_tags(dict(core_tags))
        for model_metric in (self._fill, self._skipped, self._load, self._warm_up):
            model_metric.set_default_tags(dict(self._model))
        self._gauges = _HeldGauges()

    def stage(self, stage: str, seconds: float) -> None:
        self._stage.observe(seconds, {**self._model, "stage": stage})

    def forward(self, images: int, max_batch_size: int, seconds: float) -> None:
        self.stage("forward", seconds)
        self._batch_size.observe(images)
        self._fill.observe(min(images / max_batch_size, 1.0))
        self._core_images.inc(images)
        self._core_busy.inc(max(seconds, 1e-9))

    def skipped(self, images: int) -> None:
        self._skipped.inc(images)

    def loaded(self, seconds: float) -> None:
        self._gauges.set(self._load, seconds)

    def warmed_up(self, seconds: float) -> None:
        self._gauges.set(self._warm_up, seconds)
