"""Trace or compile a model for a target and write the artifact a replica loads: a preset,
or a model of your own as a Serve config describes it (--config).

    imgclf-compile --model resnet50 --weights resnet50.pth \\
        --target neuronx --batch-size 4 --out /models/resnet50-neuronx.pt
    imgclf-compile --config serve/serve_config.yaml --model flowers \\
        --target neuronx --batch-size 4 --out /models/flowers-neuronx.pt

(`python -m imgclf_serve.compile` is the same command.) The config's model then names the
artifact as its `artifact`.

Targets:
  cpu, cuda  TorchScript traced on the CPU in fp32 (portable; the cuda backend converts it to
             fp16 channels_last when it loads it).
  neuron     torch-neuron (Inferentia 1): torch.neuron.trace, with dynamic batch size by default
             so any multiple of --batch-size runs; the replica pads the last chunk.
  neuronx    torch-neuronx (Inferentia 2, Trainium): torch_neuronx.trace at a fixed batch size;
             the replica splits and pads batches to it.
Next to PATH it writes PATH.json (model, target, batch size), which the replica checks.

The neuron and neuronx targets need the Neuron SDK and run at image build time (see k8s/);
they are not exercised in this repository's tests, which have no Inferentia.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import yaml
from pydantic import ValidationError

from imgclf_serve.backends.artifact import ArtifactInfo, write_info
from imgclf_serve.backends.base import BackendName
from imgclf_serve.backends.neuron import import_runtime
from imgclf_serve.models import REGISTRY, get_spec
from imgclf_serve.settings import ModelConfig

TARGETS = [name.value for name in BackendName]


def compile_model(
    model: str,
    target: str,
    batch_size: int,
    out: Path,
    weights: Path | None = None,
    dynamic_batch: bool = True,
    config: ModelConfig | None = None,
) -> ArtifactInfo:
    """`config`: the model as a Serve config describes it (a model of your own); otherwise
    `model` is a preset, with `weights` when it ships none."""
    spec = config.spec() if config is not None else get_spec(model)
    module = spec.build(weights).eval()
    example = torch.zeros(batch_size, 3, spec.input_size, spec.input_size)
    backend = BackendName(target)
    with torch.no_grad():
        if backend is BackendName.NEURON:
            import_runtime(backend)
            compiled = torch.neuron.trace(  # type: ignore[attr-defined]
                module, example_inputs=[example], dynamic_batch_size=dynamic_batch
            )
        elif backend is BackendName.NEURONX:
            import_runtime(backend)
            import torch_neuronx

            compiled = torch_neuronx.trace(module, example)
            dynamic_batch = False
        else:
            compiled = torch.jit.trace(module, example)
            dynamic_batch = True
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(compiled, str(out))
    info = ArtifactInfo(
        model=model,
        target=target,
        batch_size=batch_size,
        dynamic_batch=dynamic_batch,
        torch_version=torch.__version__,
    )
    write_info(out, info)
    return info


def model_in_config(path: Path, name: str) -> ModelConfig:
    """The model `name` of the (first) application in the Serve config at `path`."""
    document = yaml.safe_load(path.read_text())
    applications = (document or {}).get("applications") or []
    models = [m for app in applications for m in (app.get("args") or {}).get("models", [])]
    found = [m for m in models if m.get("name") == name]
    if not found:
        names = ", ".join(str(m.get("name")) for m in models) or "none"
        raise ValueError(f"{path} has no model {name!r}; its models: {names}")
    try:
        return ModelConfig.model_validate(found[0])
    except ValidationError as exc:
        raise ValueError(f"{path}, model {name}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m imgclf_serve.compile",
        description="Trace or compile a model for a backend; writes PATH and PATH.json.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help=f"a preset ({', '.join(sorted(REGISTRY))}) or, with --config, a model it describes",
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="a Serve config whose models include --model"
    )
    parser.add_argument("--target", required=True, choices=TARGETS)
    parser.add_argument("--batch-size", type=int, default=1, help="batch size to trace with")
    parser.add_argument("--out", type=Path, required=True, help="artifact path to write")
    parser.add_argument("--weights", type=Path, default=None, help="state dict file")
    parser.add_argument(
        "--no-dynamic-batch",
        action="store_true",
        help="neuron: compile for exactly --batch-size (default: dynamic batch size)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    try:
        config = None if args.config is None else model_in_config(args.config, args.model)
        if config is None and args.model not in REGISTRY:
            raise ValueError(
                f"{args.model!r} is not a preset ({', '.join(sorted(REGISTRY))}); for a model "
                "of your own, pass the Serve config that describes it with --config"
            )
        info = compile_model(
            args.model,
            args.target,
            args.batch_size,
            args.out,
            weights=args.weights,
            dynamic_batch=not args.no_dynamic_batch,
            config=config,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({info.target}, batch size {info.batch_size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
