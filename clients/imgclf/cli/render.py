"""How results look: readable tables; JSON records of one stable shape (`--json`, `--jsonl`);
or the eks-neuron prototype's {label: probability} (`--prototype-json`)."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from typing import Any

from imgclf.results import BatchItem, Classification, ItemError, ServerModels


def classification_table(name: str, result: Classification) -> str:
    where = ""
    if result.served_by is not None:
        served = result.served_by
        where = " on " + " ".join([served.device_kind.value, *map(str, served.core_ids)])
        if served.backend.value != served.device_kind.value:
            where += f" ({served.backend.value} backend)"
    lines = [f"{name}  [{result.model}{where}]"]
    width = max(len(p.label) for p in result.predictions)
    for rank, p in enumerate(result.predictions, start=1):
        lines.append(f"  {rank}. {p.label:<{width}}  {p.probability * 100:6.2f}%")
    return "\n".join(lines)


def error_line(name: str, error: ItemError) -> str:
    return f"{name}  FAILED {error.code.name}: {error.message}"


def item_text(name: str, item: BatchItem) -> str:
    if isinstance(item, ItemError):
        return error_line(name, item)
    return classification_table(name, item)


def item_record(name: str, item: BatchItem) -> dict[str, Any]:
    """One image's result, the same shape for one image or many: {"path", "model",
    "predictions": [{"label", "class_index", "probability"}], "served_by"} or {"path",
    "error": {"code", "reason", "message"}}."""
    if isinstance(item, ItemError):
        return {"path": name, "error": _error(item)}
    return {
        "path": name,
        "model": item.model,
        "predictions": _plain(list(item.predictions)),
        "served_by": _plain(item.served_by),
    }


def prototype_json(item: BatchItem) -> dict[str, Any]:
    """{label: probability} like the eks-neuron prototype, or {"error": {...}}."""
    if isinstance(item, ItemError):
        return {"error": _error(item)}
    return item.as_dict()


def _error(item: ItemError) -> dict[str, str]:
    return {"code": item.code.name, "reason": item.reason, "message": item.message}


def models_table(models: ServerModels) -> str:
    header = ("MODEL", "VERSION", "INPUT", "CLASSES", "BACKEND", "DEVICE", "REPLICAS", "MAX BATCH")
    rows = [header] + [
        (
            m.name + (" (default)" if m.name == models.default_model else ""),
            m.version or "-",
            f"{m.input_width}x{m.input_height}",
            str(m.num_classes),
            m.backend.value,
            m.device_kind.value,
            str(m.replicas),
            str(m.max_batch_size),
        )
        for m in models.models
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    limits = models.limits
    lines.append(
        f"limits per call: {limits.max_images_per_batch} images, "
        f"{limits.max_image_bytes / 2**20:.1f} MiB per image, "
        f"{limits.max_image_pixels / 1e6:.1f} megapixels per image, "
        f"{limits.max_request_bytes / 2**20:.1f} MiB per call"
    )
    return "\n".join(lines)


def to_json(value: Any) -> str:
    return json.dumps(_plain(value), indent=2)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def report_error(message: str, exit_status: int) -> int:
    """One line on stderr, no traceback; returns the exit status to use."""
    print(f"imgclf: error: {message}", file=sys.stderr)
    return exit_status
