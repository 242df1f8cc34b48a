"""Trace or compile a registered model for a target and write the artifact a replica loads.

    python -m imgclf_serve.compile --model resnet50 --weights resnet50.pth \\
        --target neuron --batch-size 4 --out /models/resnet50-inf1.pt

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

from imgclf_serve.backends.artifact import ArtifactInfo, write_info
from imgclf_serve.backends.base import BackendName
from imgclf_serve.backends.neuron import import_runtime
from imgclf_serve.models import REGISTRY, get_spec

TARGETS = [name.value for name in BackendName]


def compile_model(
    model: str,
    target: str,
    batch_size: int,
    out: Path,
    weights: Path | None = None,
    dynamic_batch: bool = True,
) -> ArtifactInfo:
    spec = get_spec(model)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m imgclf_serve.compile",
        description="Trace or compile a model for a backend; writes PATH and PATH.json.",
    )
    parser.add_argument("--model", required=True, choices=sorted(REGISTRY))
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
        info = compile_model(
            args.model,
            args.target,
            args.batch_size,
            args.out,
            weights=args.weights,
            dynamic_batch=not args.no_dynamic_batch,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({info.target}, batch size {info.batch_size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
