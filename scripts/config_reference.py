"""Write CONFIGURATION.md, the reference of every Serve config field, default and bound, from
imgclf_serve.settings (the one place they are set), or check that the committed copy is current.

    python scripts/config_reference.py generate
    python scripts/config_reference.py check
"""

from __future__ import annotations

import sys
import types
import typing
from enum import Enum
from typing import Any

from generated import ROOT, write_or_check
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from imgclf_serve import settings
from imgclf_serve.settings import (
    AdmissionConfig,
    AppArgs,
    HedgingConfig,
    IngressConfig,
    IngressUserConfig,
    LimitsConfig,
    ModelConfig,
    ReplicaUserConfig,
)

OUT = ROOT / "CONFIGURATION.md"

INTRO = """# Configuration reference

Generated from `serve/imgclf_serve/settings.py` by `make config-reference`; do not edit. That
module is the one place defaults and limits are set: `serve/serve_config.yaml` (and the
RayService manifests that embed it) set only what differs, and a test keeps it so.

A Serve config has two parts for imgclf. `applications[].args` is `AppArgs`, checked when the
application is built (a bad value fails the deploy with a message naming the field); a change
restarts every replica. `applications[].deployments[]` holds Ray Serve's deployment options
per deployment name (the model's name, or `ClassifierIngress`) and each one's `user_config`,
which running replicas apply in place.
"""


def type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(
            "null" if arg is type(None) else type_name(arg) for arg in typing.get_args(annotation)
        )
    if origin is list:
        (item,) = typing.get_args(annotation)
        return f"list of {type_name(item)}"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(its defaults)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return (
            "[" + ", ".join(f"`{item.model_dump(exclude_defaults=True)}`" for item in value) + "]"
        )
    if isinstance(value, Enum):
        value = value.value
    return "`null`" if value is None else f"`{value}`"


def bounds_text(field: FieldInfo) -> str:
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "at least"}
    found = []
    for item in field.metadata:
        for attribute, word in words.items():
            value = getattr(item, attribute, None)
            if value is not None:
                found.append(f"{word} {value}")
    return ", ".join(found)


def table(model: type[BaseModel], where: str) -> str:
    doc = " ".join((model.__doc__ or "").split())
    rows = [
        f"## {model.__name__}",
        "",
        f"{where}. {doc}",
        "",
        "| field | type | default | bounds | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in model.model_fields.items():
        meaning = " ".join((field.description or "").split())
        rows.append(
            f"| `{name}` | {type_name(field.annotation)} | {default_text(field)} | "
            f"{bounds_text(field)} | {meaning} |"
        )
    return "\n".join(rows) + "\n"


def deployment_options() -> str:
    return "\n".join(
        [
            "## Deployment options",
            "",
            "Ray Serve options imgclf sets on its deployments; a `deployments[]` entry of the "
            "Serve config overrides them by name. Ray's own defaults apply to the rest (e.g. "
            "`health_check_period_s`: 10 s, a replica failing 3 checks in a row is replaced).",
            "",
            "| deployment | option | value |",
            "| --- | --- | --- |",
            f"| each model | `max_ongoing_requests` | `{settings.MODEL_MAX_ONGOING_REQUESTS}` |",
            f"| each model | `max_queued_requests` | `{settings.MODEL_MAX_QUEUED_REQUESTS}` |",
            "| each model | `user_config` | [ReplicaUserConfig](#replicauserconfig) |",
            "| `ClassifierIngress` | `max_ongoing_requests` | "
            f"`{settings.INGRESS_MAX_ONGOING_REQUESTS}` |",
            "| `ClassifierIngress` | `user_config` | [IngressUserConfig](#ingressuserconfig) |",
            "",
        ]
    )


def render() -> str:
    sections = [
        INTRO,
        table(AppArgs, "`applications[].args`"),
        table(ModelConfig, "`args.models[]`"),
        table(settings.SourceConfig, "`args.models[].source`"),
        table(settings.InputConfig, "`args.models[].input`"),
        table(settings.AutoscalingConfig, "`args.models[].autoscaling`"),
        table(IngressConfig, "`args.ingress`"),
        table(LimitsConfig, "`args.limits`"),
        table(AdmissionConfig, "`args.admission`"),
        deployment_options(),
        table(ReplicaUserConfig, "A model deployment's `user_config`"),
        table(IngressUserConfig, "The `ClassifierIngress` deployment's `user_config`"),
        table(HedgingConfig, "`user_config.hedging` of `ClassifierIngress`"),
        table(settings.FaultInjection, "`user_config.inject_faults` of a model deployment"),
    ]
    return "\n".join(sections)


def main(argv: list[str]) -> int:
    if argv not in (["generate"], ["check"]):
        print(__doc__)
        return 2
    command = "write" if argv == ["generate"] else "check"
    return write_or_check(
        {OUT: render()}, command, "configuration reference", "make config-reference"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
