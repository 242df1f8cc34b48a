"""Build the Grafana dashboards from the panel lists below, or check the committed JSON.

    python scripts/dashboards.py generate   # rewrite k8s/observability/dashboards/*.json
    python scripts/dashboards.py check      # exit 1 if the JSON is not what this file builds

Metric names are Prometheus' names for imgclf_serve/metrics.py (Ray prefixes `ray_`) and
neuron-monitor's. tests/integration/test_metrics.py runs every expression against a real
Prometheus scraping a real cluster.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generated import write_or_check

OUT = Path(__file__).resolve().parent.parent / "k8s" / "observability" / "dashboards"
RATE = "$__rate_interval"
MODEL = 'model=~"$model"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    width: int = 12
    kind: str = "timeseries"


@dataclass(frozen=True)
class Row:
    title: str
    panels: list[Panel] = field(default_factory=list)


def sum_rate(metric: str, by: str, selector: str = "") -> str:
    """sum by (<by>) (rate(<metric>{<selector>}[$__rate_interval]))"""
    matchers = f"{{{selector}}}" if selector else ""
    return f"sum by ({by}) (rate({metric}{matchers}[{RATE}]))"


def quantile(q: float, metric: str, by: str, selector: str = "") -> str:
    return f"histogram_quantile({q}, {sum_rate(metric + '_bucket', 'le, ' + by, selector)})"


def quantiles(metric: str, by: str, selector: str) -> list[tuple[str, str]]:
    return [
        (quantile(q, metric, by, selector), f"p{round(q * 100)} {{{{{by}}}}}")
        for q in (0.5, 0.95, 0.99)
    ]


OK = 'code="OK"'
SHED = 'code="RESOURCE_EXHAUSTED"'
NEURON_CORE = 'device="neuron_core"'
CORE = "model, device, core, replica"
CORE_LEGEND = "{{device}} {{core}} ({{replica}})"

# fmt: off
SERVING = [
    Row("Traffic", [
        Panel("Images per second", "Images answered, by RPC and status code.",
              [(sum_rate("ray_imgclf_images_total", "rpc, code", MODEL), "{{rpc}} {{code}}")],
              "ops"),
        Panel("Calls per second", "Calls answered, by RPC.",
              [(sum_rate("ray_imgclf_requests_total", "rpc"), "{{rpc}}")], "reqps"),
        Panel("Errors by code", "Failed calls per second, by RPC and gRPC status code; failed "
              "images of successful ClassifyBatch calls are under Images per second.",
              [(sum_rate("ray_imgclf_requests_total", "rpc, code", 'code!="OK"'),
                "{{rpc}} {{code}}")], "reqps", 8),
        Panel("Shed load", "Calls and images refused with RESOURCE_EXHAUSTED because a model's "
              "queue was full (max_queued_requests).",
              [(sum_rate("ray_imgclf_requests_total", "rpc", SHED), "calls {{rpc}}"),
               (sum_rate("ray_imgclf_images_total", "rpc", SHED), "images {{rpc}}")],
              "reqps", 8),
        Panel("Calls in flight", "Calls the ingress is working on.",
              [("sum by (rpc) (ray_imgclf_requests_in_flight)", "{{rpc}}")], "short", 8),
    ]),
    Row("Latency", [
        Panel("Latency of successful calls", "Time from the call reaching the ingress to its "
              "answer; p50, p95, p99 per RPC.",
              quantiles("ray_imgclf_request_latency_seconds", "rpc", f"{OK},{MODEL}"), "s"),
        Panel("Stage breakdown (p50)", "Per image: decode (decode + preprocess), queue (waiting "
              "for a decode thread and a batch), postprocess; forward is per batch.",
              [(quantile(0.5, "ray_imgclf_stage_seconds", "stage", MODEL), "{{stage}}")], "s"),
        Panel("Queue wait before a batch", "How long images wait for their forward pass.",
              quantiles("ray_imgclf_stage_seconds", "model", f'stage="queue",{MODEL}'), "s", 24),
    ]),
    Row("Batching", [
        Panel("Images per forward pass", "Mean (exact) and p95 batch size the device sees.",
              [(f'{sum_rate("ray_imgclf_core_images_total", "model", MODEL)} / '
                f'{sum_rate("ray_imgclf_batch_size_count", "model", MODEL)}', "mean {{model}}"),
               (quantile(0.95, "ray_imgclf_batch_size", "model", MODEL), "p95 {{model}}")]),
        Panel("Batch fill ratio", "Images per forward pass over max_batch_size (p50).",
              [(quantile(0.5, "ray_imgclf_batch_fill_ratio", "model", MODEL), "{{model}}")],
              "percentunit"),
    ]),
    Row("Cores", [
        Panel("Core utilisation", "Share of wall time each core spends in forward passes "
              "(busy seconds per second).",
              [(sum_rate("ray_imgclf_core_busy_seconds_total", CORE, MODEL), CORE_LEGEND)],
              "percentunit"),
        Panel("Images per second per core", "Images each core ran.",
              [(sum_rate("ray_imgclf_core_images_total", CORE, MODEL), CORE_LEGEND)], "ops"),
    ]),
    Row("Replicas", [
        Panel("Healthy replicas", "Replicas Ray Serve counts healthy, per deployment.",
              [("sum by (deployment) (ray_serve_deployment_replica_healthy)",
                "{{deployment}}")], "short", 8),
        Panel("Model load time", "Load time at each replica's start.",
              [(f"max by (model, replica) (ray_imgclf_model_load_seconds{{{MODEL}}})",
                "{{model}} {{replica}}")], "s", 8),
        Panel("Warm-up time", "The last warm-up pass per replica (start, or a batch size change).",
              [(f"max by (model, replica) (ray_imgclf_model_warmup_seconds{{{MODEL}}})",
                "{{model}} {{replica}}")], "s", 8),
    ]),
]

NEURON = [
    Row("Serving and hardware, per NeuronCore", [
        Panel("NeuronCore utilisation (neuron-monitor)", "neuron-monitor's busy ratio per core.",
              [("avg by (instance_id, neuroncore) (neuroncore_utilization_ratio)",
                "{{instance_id}} core {{neuroncore}}")], "percentunit"),
        Panel("imgclf core utilisation", "imgclf's own busy ratio per core it pinned a replica "
              "to (same core numbering as neuron-monitor).",
              [(sum_rate("ray_imgclf_core_busy_seconds_total", "core, replica", NEURON_CORE),
                "core {{core}} ({{replica}})")], "percentunit"),
        Panel("imgclf images per second per NeuronCore", "Images each NeuronCore ran.",
              [(sum_rate("ray_imgclf_core_images_total", "core", NEURON_CORE), "core {{core}}")],
              "ops", 24),
    ]),
    Row("Neuron runtime", [
        Panel("Execution latency", "Neuron runtime latency percentiles per execution.",
              [('max by (percentile) (execution_latency_seconds{percentile=~"p50|p99|p100"})',
                "{{percentile}}")], "s", 8),
        Panel("Execution errors", "Runtime execution errors per second, by type.",
              [(sum_rate("execution_errors_total", "error_type"), "{{error_type}}")], "ops", 8),
        Panel("Execution status", "Executions per second by outcome.",
              [(sum_rate("execution_status_total", "status_type"), "{{status_type}}")], "ops", 8),
        Panel("Hardware ECC events", "Corrected and uncorrected memory errors per second.",
              [(sum_rate("hardware_ecc_events_total", "instance_id, event_type"),
                "{{instance_id}} {{event_type}}")], "ops"),
        Panel("Runtime memory", "Memory the Neuron runtime uses, host and device.",
              [("sum by (instance_id, memory_location) (neuron_runtime_memory_used_bytes)",
                "{{instance_id}} {{memory_location}}")], "bytes"),
    ]),
]
# fmt: on


def dashboard(title: str, uid: str, rows: list[Row], variables: list[dict[str, Any]]) -> dict:
    panels: list[dict[str, Any]] = []
    y = 0
    for row in rows:
        panels.append(
            {
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "id": len(panels) + 1,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y = 0, y + 8
            panels.append(_panel(panel, len(panels) + 1, x, y))
            x += panel.width
        y += 8
    return {
        "title": title,
        "uid": uid,
        "tags": ["imgclf", "ray-serve", "neuron"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables},
        "panels": panels,
    }


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "type": panel.kind,
        "id": panel_id,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "refId": chr(ord("A") + n),
            }
            for n, (expr, legend) in enumerate(panel.queries)
        ],
    }


DATASOURCE_VARIABLE = {
    "name": "datasource",
    "label": "Prometheus",
    "type": "datasource",
    "query": "prometheus",
    "current": {},
    "hide": 0,
}
MODEL_VARIABLE = {
    "name": "model",
    "label": "Model",
    "type": "query",
    "datasource": DATASOURCE,
    "query": {"query": "label_values(ray_imgclf_requests_total, model)", "refId": "model"},
    "definition": "label_values(ray_imgclf_requests_total, model)",
    "includeAll": True,
    "allValue": ".*",
    "multi": True,
    "refresh": 2,
    "current": {},
    "hide": 0,
}


def build() -> dict[str, dict]:
    return {
        "imgclf-serving.json": dashboard(
            "imgclf serving", "imgclf-serving", SERVING, [DATASOURCE_VARIABLE, MODEL_VARIABLE]
        ),
        "neuroncores.json": dashboard(
            "imgclf NeuronCores", "imgclf-neuroncores", NEURON, [DATASOURCE_VARIABLE]
        ),
    }


def render(board: dict) -> str:
    return json.dumps(board, indent=2) + "\n"


def main(argv: list[str]) -> int:
    if argv not in (["generate"], ["check"]):
        print(__doc__)
        return 2
    files = {OUT / name: render(board) for name, board in build().items()}
    command = "write" if argv == ["generate"] else "check"
    return write_or_check(files, command, "dashboards", "make dashboards")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
