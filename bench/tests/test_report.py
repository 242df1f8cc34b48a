"""The benchmark reports: target ratios, tables, perf_analyzer's input and report."""

from __future__ import annotations

from bench.report import markdown, targets


def canned() -> dict:  # type: ignore[type-arg]
    load = {"calls_per_s": 1, "p90_ms": 1, "p99_ms": 1, "errors": 0, "images_per_call": 1}
    return {
        "started": "2026-11-28T00:00:00",
        "machine": {"hostname": "m", "cpu": "c", "cpus": 2, "memory_gb": 24, "python": "3.11",
                    "torch": "t", "ray": "r", "grpcio": "g"},
        "duration_s": 8,
        "inprocess": [
            {"batch_size": 1, "threads": 2, "images_per_s": 30.0, "ms_per_batch": 33.0},
            {"batch_size": 4, "threads": 2, "images_per_s": 40.0, "ms_per_batch": 100.0},
            {"batch_size": 1, "threads": 1, "images_per_s": 20.0, "ms_per_batch": 50.0},
        ],
        "loads": [
            {**load, "system": "imgclf default", "scenario": "Classify c=16", "concurrency": 16,
             "images_per_s": 32.0, "p50_ms": 500},
            {**load, "system": "imgclf tuned", "scenario": "Classify c=16", "concurrency": 16,
             "images_per_s": 36.0, "p50_ms": 450},
            {**load, "system": "imgclf default", "scenario": "Classify c=1", "concurrency": 1,
             "images_per_s": 17.0, "p50_ms": 60.0},
            {**load, "system": "imgclf default", "scenario": "ClassifyBatch(32) c=4",
             "concurrency": 4, "images_per_call": 32, "images_per_s": 44.0, "p50_ms": 2800},
            {**load, "system": "prototype", "scenario": "POST /model c=16", "concurrency": 16,
             "images_per_s": 24.0, "p50_ms": 600},
            {**load, "system": "triton", "scenario": "infer c=16", "concurrency": 16,
             "images_per_s": 45.0, "p50_ms": 350},
        ],
        "memory": [{"system": "imgclf", "replicas": 4, "rss_mb": 2500.0, "pss_mb": 2000.0}],
        "batch_histograms": {},
        "notes": [],
    }  # fmt: skip


def test_targets_are_ratios_against_the_same_run() -> None:
    rows = {target: (ratio, met) for target, _, ratio, met in targets(canned())}
    assert rows["ClassifyBatch(32) >= 0.85 x in-process limit"] == ("1.10x", True)
    assert rows["Classify c=16 >= 0.75 x in-process limit"] == ("0.90x", True)  # best setting
    assert rows["Classify c=16 >= 1.5 x prototype-style"] == ("1.50x", True)
    assert rows["Classify c=16 >= Triton c=16"] == ("0.80x", False)
    assert rows["Added latency at c=1 (p50 - in-process) <= 10 ms"] == ("+27.0 ms", False)
    assert rows["Local cluster with 4 CPU replicas <= 3 GB RSS"][1] is True


def test_markdown_has_every_table() -> None:
    text = markdown(canned())
    for heading in ("## In-process limit", "## Served", "## Targets", "## Memory and cold start"):
        assert heading in text
    assert "| triton | infer c=16 | 45.0 |" in text


def test_perf_analyzer_data_carries_bytes_elements_with_their_length(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """perf_analyzer sends a "b64" value as the tensor's raw contents, as it is."""
    import base64
    import json
    import struct

    from bench.perf_analyzer import input_data
    from bench.run import IMAGES

    entries = json.loads(input_data(tmp_path / "d.json", "IMAGE").read_text())["data"]
    assert len(entries) == len(IMAGES)
    raw = base64.b64decode(entries[0]["IMAGE"]["b64"])
    assert struct.unpack("<I", raw[:4]) == (len(IMAGES[0]),) and raw[4:] == IMAGES[0]


def test_perf_analyzer_report_has_per_slice_rates_and_ratios() -> None:
    from bench.perf_analyzer import markdown as perf_markdown

    points = [
        {"system": system, "concurrency": c, "images_per_s": rate, "p50_ms": 30.0,
         "p99_ms": 40.0, "repeat": r}
        for r in range(2)
        for c, system, rate in ((1, "imgclf", 30.0), (1, "triton", 25.0), (16, "imgclf", 45.0),
                                (16, "triton", 50.0))
    ]  # fmt: skip
    results = {"started": "2026-12-01T00:00:00", "machine": {}, "slice_s": 6, "points": points}
    text = perf_markdown(results)
    assert "| 16 | triton | 50.0, 50.0 | 30.0 | 40.0 |" in text
    assert "- 1 in flight, imgclf / Triton: 1.20x (min 1.20, max 1.20, n=2)" in text
    assert "- 16 in flight, imgclf / Triton: 0.90x" in text
