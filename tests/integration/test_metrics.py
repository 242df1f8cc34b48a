"""imgclf's metrics through a real Prometheus scraping the real cluster, and the Grafana
dashboards' queries run against it.

A known set of calls (successes, bad images, an unknown model, shed load, both protocols)
moves the counters
by exactly that much; every dashboard expression returns data. neuron-monitor can't run here,
so Prometheus scrapes a real saved neuron-monitor scrape (tests/data) as a second target.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from imgclf import AsyncClassifierClient, ClassifierClient, ImgclfError
from tests.conftest import IMAGES_DIR
from tests.integration.conftest import NEURON_CORES, Server
from tests.integration.open_inference import model_infer
from tests.integration.prometheus import Prometheus, StaticMetrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
DASHBOARDS = ROOT / "k8s" / "observability" / "dashboards"
NEURON_SCRAPE = ROOT / "tests" / "data" / "neuron-metric-example.txt"
LITE0 = "efficientnet-lite0"
KEY = ("protocol", "rpc", "model", "code")
V1, OIP = "imgclf.v1", "open-inference-v2"


@pytest.fixture(scope="module")
def prometheus(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    neuron_monitor = StaticMetrics(NEURON_SCRAPE)
    prom = Prometheus(
        tmp_path_factory.mktemp("prometheus"),
        {
            "ray": f"127.0.0.1:{server.cluster.metrics_port}",
            "neuron-monitor": neuron_monitor.target,
        },
    )
    try:
        prom.start()
        prom.wait_for('up{job="ray"} == 1')
        prom.wait_for('up{job="neuron-monitor"} == 1')
        yield prom
    finally:
        prom.stop()
        neuron_monitor.stop()
        assert prom.process is None or prom.process.poll() is not None


@dataclass
class Traffic:
    """What the test sent, by (protocol, rpc, model, code), and the counters' expected moves."""

    requests: Counter[tuple[str, ...]]
    images: Counter[tuple[str, ...]]
    core_images: Counter[str]
    shed: int


def snapshot(prom: Prometheus) -> dict[str, dict[tuple[str, ...], float]]:
    by = ", ".join(KEY)
    return {
        "requests": prom.values(f"sum by ({by}) (ray_imgclf_requests_total)", *KEY),
        "images": prom.values(f"sum by ({by}) (ray_imgclf_images_total)", *KEY),
        "latency": prom.values(f"sum by ({by}) (ray_imgclf_request_latency_seconds_count)", *KEY),
        "core_images": prom.values("sum by (model) (ray_imgclf_core_images_total)", "model"),
        "stages": prom.values(
            "sum by (model, stage) (ray_imgclf_stage_seconds_count)", "model", "stage"
        ),
    }


def settled(prom: Prometheus, timeout_s: float = 60) -> dict[str, dict[tuple[str, ...], float]]:
    """A snapshot that no longer moves: every earlier call has been exported and scraped."""
    deadline = time.monotonic() + timeout_s
    last = snapshot(prom)
    while time.monotonic() < deadline:
        time.sleep(3)
        now = snapshot(prom)
        if now == last:
            return now
        last = now
    raise AssertionError("imgclf counters kept moving with no traffic")


def delta(after: dict[tuple[str, ...], float], before: dict[tuple[str, ...], float]) -> Counter:
    moved: Counter[tuple[str, ...]] = Counter()
    for key, value in after.items():
        if value - before.get(key, 0.0):
            moved[key] = round(value - before.get(key, 0.0))
    return moved


def send_known_calls(target: str) -> Traffic:
    seeds = [(IMAGES_DIR / name).read_bytes() for name in ("kitten_small.jpg", "strawberry.jpg")]
    tiger = (IMAGES_DIR / "tiger.jpg").read_bytes()
    with ClassifierClient(target, retry=None, max_images_per_call=256, timeout=120) as client:
        for _ in range(5):
            client.classify(tiger)
        for _ in range(2):
            with pytest.raises(ImgclfError):
                client.classify(b"not an image")
        with pytest.raises(ImgclfError):
            client.classify(tiger, model="resnet152")
        client.classify(tiger, model="resnet50")
        for _ in range(2):
            client.classify_batch([*seeds, tiger, b"junk"])
        client.classify_batch([tiger] * 8)
    model_infer(target, [*seeds, tiger])
    with pytest.raises(grpc.RpcError):
        model_infer(target, [tiger, b"junk"])
    return Traffic(
        requests=Counter({
            (V1, "Classify", LITE0, "OK"): 5,
            (V1, "Classify", LITE0, "INVALID_ARGUMENT"): 2,
            (V1, "Classify", "unknown", "NOT_FOUND"): 1,
            (V1, "Classify", "resnet50", "OK"): 1,
            (V1, "ClassifyBatch", LITE0, "OK"): 3,
            (OIP, "ModelInfer", LITE0, "OK"): 1,
            (OIP, "ModelInfer", LITE0, "INVALID_ARGUMENT"): 1,
        }),
        images=Counter({
            (V1, "Classify", LITE0, "OK"): 5,
            (V1, "Classify", LITE0, "INVALID_ARGUMENT"): 2,
            (V1, "Classify", "unknown", "NOT_FOUND"): 1,
            (V1, "Classify", "resnet50", "OK"): 1,
            (V1, "ClassifyBatch", LITE0, "OK"): 14,
            (V1, "ClassifyBatch", LITE0, "INVALID_ARGUMENT"): 2,
            (OIP, "ModelInfer", LITE0, "OK"): 3,
            (OIP, "ModelInfer", LITE0, "INVALID_ARGUMENT"): 2,  # the call failed as a whole
        }),
        core_images=Counter({LITE0: 19 + 4, "resnet50": 1}),  # 4: the good images of ModelInfer
        shed=0,
    )  # fmt: skip


async def burst(target: str, calls: int) -> Counter[str]:
    """`calls` concurrent Classify calls without retries; their status codes."""
    tiger = (IMAGES_DIR / "tiger.jpg").read_bytes()
    async with AsyncClassifierClient(target, retry=None, timeout=120) as client:
        outcomes = await asyncio.gather(
            *(client.classify(tiger) for _ in range(calls)), return_exceptions=True
        )
    return Counter(o.code.name if isinstance(o, ImgclfError) else "OK" for o in outcomes)


def shed_load(server: Server) -> Counter[str]:
    """Shrink lite0's queue to 1 and send bursts until some calls are shed; then restore."""
    target = server.cluster.grpc_target
    seen: Counter[str] = Counter()
    with server.deployment_options(LITE0, max_ongoing_requests=1, max_queued_requests=1):
        deadline = time.monotonic() + 90
        while not seen["RESOURCE_EXHAUSTED"] and time.monotonic() < deadline:
            seen += asyncio.run(burst(target, 24))
        assert seen["RESOURCE_EXHAUSTED"], f"no call was shed: {seen}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # until the old queue is back
        after = asyncio.run(burst(target, 16))
        seen += after
        if not after["RESOURCE_EXHAUSTED"]:
            break
    return seen


@pytest.fixture(scope="module")
def traffic(server: Server, prometheus: Prometheus) -> tuple[Traffic, dict, dict]:  # type: ignore[type-arg]
    before = settled(prometheus)
    sent = send_known_calls(server.cluster.grpc_target)
    outcomes = shed_load(server)
    for code, count in outcomes.items():
        sent.requests[V1, "Classify", LITE0, code] += count
        sent.images[V1, "Classify", LITE0, code] += count
    sent.core_images[LITE0] += outcomes["OK"]
    sent.shed = outcomes["RESOURCE_EXHAUSTED"]

    deadline = time.monotonic() + 60
    while True:
        after = snapshot(prometheus)
        if (
            delta(after["requests"], before["requests"]) == sent.requests
            or time.monotonic() > deadline
        ):
            break
        time.sleep(1)
    return sent, before, settled(prometheus)


def test_counters_moved_by_exactly_the_calls_made(traffic) -> None:  # type: ignore[no-untyped-def]
    sent, before, after = traffic
    assert sent.shed > 0
    assert delta(after["requests"], before["requests"]) == sent.requests
    assert delta(after["images"], before["images"]) == sent.images
    print(f"\ncalls by (protocol, rpc, model, code): {dict(sent.requests)}")


def test_histograms_count_every_call_and_image(traffic) -> None:  # type: ignore[no-untyped-def]
    sent, before, after = traffic
    assert delta(after["latency"], before["latency"]) == sent.requests
    core_images = delta(after["core_images"], before["core_images"])
    assert core_images == Counter({(model,): n for model, n in sent.core_images.items()})
    stages = delta(after["stages"], before["stages"])
    for model, images in sent.core_images.items():
        # images that reached the device went through every stage once; bad ones only failed
        assert stages[model, "queue"] == stages[model, "postprocess"] == images
        assert stages[model, "decode"] == images
        assert 1 <= stages[model, "forward"] <= images


def test_every_core_has_series(prometheus: Prometheus, traffic) -> None:  # type: ignore[no-untyped-def]
    cores = prometheus.values(
        "sum by (model, device, core) (ray_imgclf_core_busy_seconds_total)",
        "model",
        "device",
        "core",
    )
    lite0_cores = {core for (model, device, core) in cores if model == LITE0}
    assert lite0_cores == {str(core) for core in range(NEURON_CORES)}
    assert {device for (model, device, _) in cores if model == LITE0} == {"neuron_core"}
    assert (("resnet50", "cpu", "cpu")) in cores
    assert all(busy > 0 for busy in cores.values())
    loads = prometheus.values("ray_imgclf_model_load_seconds", "model", "replica")
    assert len(loads) == NEURON_CORES + 1 and all(s > 0 for s in loads.values())
    assert len(prometheus.query("ray_imgclf_model_warmup_seconds")) == NEURON_CORES + 1


def dashboard_queries(name: str) -> list[tuple[str, str]]:
    board = json.loads((DASHBOARDS / name).read_text())
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def as_query(expr: str) -> str:
    """What Grafana would send: its variables filled in."""
    return expr.replace("$__rate_interval", "5m").replace("$model", ".*")


GROUPING = re.compile(r"\bby \([^)]*\)")
METRIC_NAME = re.compile(r"\b((?:ray_|neuron|execution_|hardware_)[a-z_]+)\b(?=\s*[{\[)])")


@pytest.mark.parametrize("board", ["imgclf-serving.json", "neuroncores.json"])
def test_every_dashboard_query_returns_data(
    prometheus: Prometheus,
    traffic,
    board: str,  # type: ignore[no-untyped-def]
) -> None:
    empty = []
    for title, expr in dashboard_queries(board):
        result = prometheus.query(as_query(expr))
        values = [float(series["value"][1]) for series in result]
        if not any(math.isfinite(v) for v in values):
            empty.append(f"{title}: {expr}")
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_dashboards_use_only_exported_metrics(server: Server) -> None:
    url = f"http://127.0.0.1:{server.cluster.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        exported = reply.read().decode()
    neuron = NEURON_SCRAPE.read_text()
    for board in ("imgclf-serving.json", "neuroncores.json"):
        for title, expr in dashboard_queries(board):
            for name in METRIC_NAME.findall(GROUPING.sub("", expr)):
                source = neuron if not name.startswith("ray_") else exported
                assert re.search(rf"^{name}{{", source, re.MULTILINE), f"{board} {title}: {name}"
