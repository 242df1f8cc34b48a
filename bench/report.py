"""Turn a results dict (bench/run.py) into the Markdown table, the target ratios and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _load(results: dict[str, Any], system: str, scenario: str) -> dict[str, Any] | None:
    return next(
        (r for r in results["loads"] if r["system"] == system and r["scenario"] == scenario), None
    )


def ceiling(results: dict[str, Any]) -> float:
    return max(r["images_per_s"] for r in results["inprocess"] if r["threads"] == 2)


def best_imgclf(results: dict[str, Any], scenario: str) -> dict[str, Any] | None:
    found = [_load(results, s, scenario) for s in ("imgclf default", "imgclf tuned")]
    candidates = [r for r in found if r]
    return max(candidates, key=lambda r: r["images_per_s"]) if candidates else None


def _ratio_row(
    target: str, measured: dict[str, Any], baseline: float, minimum: float
) -> tuple[str, str, str, bool | None]:
    """A throughput target: `measured`'s images/s at least `minimum` x `baseline`."""
    ratio = measured["images_per_s"] / baseline
    return (
        target,
        f"{measured['images_per_s']} vs {baseline} img/s",
        f"{ratio:.2f}x",
        ratio >= minimum,
    )


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, ratio or difference, met) for each target of the issue."""
    limit = ceiling(results)
    single = next(r for r in results["inprocess"] if r["batch_size"] == 1 and r["threads"] == 2)
    rows: list[tuple[str, str, str, bool | None]] = []
    batch32 = best_imgclf(results, "ClassifyBatch(32) c=4")
    if batch32:
        rows.append(
            _ratio_row("ClassifyBatch(32) >= 0.85 x in-process limit", batch32, limit, 0.85)
        )
    c16 = best_imgclf(results, "Classify c=16")
    proto16 = _load(results, "prototype", "POST /model c=16")
    triton16 = _load(results, "triton", "infer c=16")
    if c16:
        rows.append(_ratio_row("Classify c=16 >= 0.75 x in-process limit", c16, limit, 0.75))
    if c16 and proto16:
        rows.append(
            _ratio_row("Classify c=16 >= 1.5 x prototype-style", c16, proto16["images_per_s"], 1.5)
        )
    if c16 and triton16:
        rows.append(_ratio_row("Classify c=16 >= Triton c=16", c16, triton16["images_per_s"], 1.0))
    c1 = best_imgclf(results, "Classify c=1")
    if c1:
        in_process_ms = single["ms_per_batch"]
        added = c1["p50_ms"] - in_process_ms
        rows.append(
            (
                "Added latency at c=1 (p50 - in-process) <= 10 ms",
                f"{c1['p50_ms']} - {in_process_ms} ms",
                f"{added:+.1f} ms",
                added <= 10,
            )
        )
    four = next(
        (m for m in results["memory"] if m["system"] == "imgclf" and m["replicas"] == 4), None
    )
    if four:
        rows.append(
            (
                "Local cluster with 4 CPU replicas <= 3 GB RSS",
                f"{four['rss_mb']} MB RSS ({four['pss_mb']} MB PSS)",
                f"{four['rss_mb'] / 3072:.2f}x of 3 GB",
                four["rss_mb"] <= 3072,
            )
        )
    return rows


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Benchmark run {results['started']} on {m['hostname']}",
        "",
        f"{m['cpu']}, {m['cpus']} CPUs, {m['memory_gb']} GB; Python {m['python']}, "
        f"torch {m['torch']}, Ray {m['ray']}, grpcio {m['grpcio']}. Model: embedded "
        f"EfficientNet-Lite0 on the CPU, {results['duration_s']} s recorded per point after "
        "warm-up; the load generator runs on the same machine.",
        "",
        "## In-process limit (decode + preprocess + forward + top-k in one process)",
        "",
        "| batch | torch threads | images/s | ms per batch |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['batch_size']} | {r['threads']} | {r['images_per_s']} | {r['ms_per_batch']} |"
        for r in results["inprocess"]
    ]
    lines += [
        "",
        "## Served",
        "",
        "| system | scenario | images/s | calls/s | p50 ms | p90 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['system']} | {r['scenario']} | {r['images_per_s']} | {r['calls_per_s']} | "
        f"{r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['errors']} |"
        for r in results["loads"]
    ]
    lines += [
        "",
        "## Targets (ratios from this run)",
        "",
        "| target | measured | ratio | met |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {t} | {m_} | {r} | {'yes' if ok else 'no'} |" for t, m_, r, ok in targets(results)
    ]
    lines += [
        "",
        "## Memory and cold start",
        "",
        "| system | replicas | RSS MB | PSS MB | cold start s |",
        "| --- | --- | --- | --- | --- |",
    ]
    cold = results.get("cold_start_s", {})
    lines += [
        f"| {mem['system']} | {mem['replicas']} | {mem['rss_mb']} | {mem['pss_mb']} | "
        f"{mem.get('cold_start_s', cold.get(mem['system'], ''))} |"
        for mem in results["memory"]
    ]
    if results["notes"]:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def plots(results: dict[str, Any], stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[dict[str, Any]]] = {}
    for r in results["loads"]:
        if r["images_per_call"] == 1 and not r["scenario"].startswith("memory"):
            series.setdefault(r["system"], []).append(r)
    limit = ceiling(results)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for system, rows in series.items():
        rows.sort(key=lambda r: r["concurrency"])
        ax.plot(
            [r["concurrency"] for r in rows],
            [r["images_per_s"] for r in rows],
            marker="o",
            label=system,
        )
    ax.axhline(limit, linestyle="--", color="grey", label=f"in-process limit ({limit})")
    ax.set(
        xscale="log",
        xlabel="concurrent single-image calls",
        ylabel="images/s",
        title="Throughput vs concurrency (one image per call)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{stem}-throughput.png", dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for system, rows in series.items():
        rows.sort(key=lambda r: r["concurrency"])
        xs = [r["concurrency"] for r in rows]
        line = ax.plot(xs, [r["p50_ms"] for r in rows], marker="o", label=f"{system} p50")[0]
        ax.plot(
            xs,
            [r["p99_ms"] for r in rows],
            marker="x",
            linestyle=":",
            color=line.get_color(),
            label=f"{system} p99",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="concurrent single-image calls",
        ylabel="latency (ms)",
        title="Latency vs concurrency",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{stem}-latency.png", dpi=110)

    histograms = results["batch_histograms"].get("default", {})
    chosen = [
        s for s in ("Classify c=1", "Classify c=16", "ClassifyBatch(32) c=4") if s in histograms
    ]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(len(chosen), 1)
    for n, scenario in enumerate(chosen):
        cumulative = {float(k): v for k, v in histograms[scenario].items()}
        bounds = sorted(cumulative)
        counts = [
            cumulative[b] - (cumulative[bounds[i - 1]] if i else 0) for i, b in enumerate(bounds)
        ]
        total = sum(counts) or 1
        ax.bar(
            [i + n * width for i in range(len(bounds))],
            [c / total for c in counts],
            width,
            label=scenario,
        )
        ax.set_xticks(
            range(len(bounds)),
            ["<=" + (str(int(b)) if b != float("inf") else "inf") for b in bounds],
        )
    ax.set(
        xlabel="images per forward pass",
        ylabel="share of forward passes",
        title="Batch sizes the replicas ran (imgclf default settings)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{stem}-batch-sizes.png", dpi=110)
    plt.close("all")


def save(out: Path, name: str, results: dict[str, Any], text: str) -> Path:
    """Write results as <out>/<date>-<name>.json and its report as .md; print the report."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{results['started'][:10]}-{name}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    stem.with_suffix(".md").write_text(text)
    print(text)
    return stem
