"""A model of your own, described in the Serve config (ModelConfig.source, labels, input):
a TorchScript file, a torch.export program, or a state dict and the architecture it fits,
with a labels file naming its outputs. Every failure to read them is a ModelSourceError
naming the model and the file, so `serve status` (and the replica's log) says what to fix."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from imgclf_serve.models.files import ModelSourceError, local_copy
from imgclf_serve.models.spec import ModelSpec

if TYPE_CHECKING:
    import torch

    from imgclf_serve.settings import InputConfig, SourceConfig

# More would be a mistake (a binary file read as labels), not a classifier.
MAX_LABELS = 100_000


def custom_spec(name: str, source: SourceConfig, labels: str, input: InputConfig) -> ModelSpec:
    names = read_labels(name, labels)

    def build(weights: Path | None) -> torch.nn.Module:
        return load_module(name, source)

    return ModelSpec(
        name=name,
        preprocess=input.preprocess(),
        build=build,
        num_classes=len(names),
        labels=lambda: names,
    )


def read_labels(name: str, location: str) -> tuple[str, ...]:
    """One class name per line, in output order; blank lines only at the end."""
    path = local_copy(name, "labels", location)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelSourceError(f"model {name}: labels file {location} is not UTF-8 text") from None
    except OSError as exc:
        raise ModelSourceError(f"model {name}: cannot read labels file {location}: {exc}") from None
    lines = [line.strip() for line in text.rstrip("\n").split("\n")]
    if not lines or lines == [""]:
        raise ModelSourceError(f"model {name}: labels file {location} is empty")
    blank = [number for number, line in enumerate(lines, 1) if not line]
    if blank:
        raise ModelSourceError(
            f"model {name}: labels file {location} has a blank line ({blank[0]})"
        )
    if len(lines) > MAX_LABELS:
        raise ModelSourceError(
            f"model {name}: labels file {location} has {len(lines)} lines (at most {MAX_LABELS})"
        )
    return tuple(lines)


def load_module(name: str, source: SourceConfig) -> torch.nn.Module:
    """The eval-mode module `source` describes."""
    import torch

    if source.torchscript is not None:
        path = local_copy(name, "torchscript", source.torchscript)
        try:
            module: torch.nn.Module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # torch raises RuntimeError, ValueError, zipfile errors...
            raise ModelSourceError(
                f"model {name}: {source.torchscript} is not a TorchScript file "
                f"({_first_line(exc)}); save one with "
                "torch.jit.save(torch.jit.script(module), path)"
            ) from None
        return module.eval()
    if source.exported is not None:
        path = local_copy(name, "exported", source.exported)
        try:
            program = torch.export.load(str(path))
        except Exception as exc:
            raise ModelSourceError(
                f"model {name}: {source.exported} is not a torch.export file "
                f"({_first_line(exc)}); save one with torch.export.save(program, path)"
            ) from None
        from imgclf_serve.models.exported import ExportedModule

        return ExportedModule(program.module())
    assert source.state_dict is not None and source.architecture is not None
    path = local_copy(name, "state_dict", source.state_dict)
    module = _architecture(name, source.architecture)(**source.architecture_args)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelSourceError(
            f"model {name}: {source.state_dict} is not a state dict ({_first_line(exc)}); "
            "save one with torch.save(module.state_dict(), path)"
        ) from None
    if not isinstance(state, dict):
        kind = type(state).__name__
        raise ModelSourceError(f"model {name}: {source.state_dict} holds a {kind}, not a dict")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelSourceError(
            f"model {name}: {source.state_dict} does not fit {source.architecture}"
            f"({_arguments(source.architecture_args)}): {_first_line(exc)}"
        ) from None
    return module.eval()


def _architecture(name: str, import_path: str):  # type: ignore[no-untyped-def]
    module_name, _, attribute = import_path.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ModelSourceError(
            f"model {name}: architecture {import_path} cannot be imported ({exc})"
        ) from None
    if not callable(found):
        raise ModelSourceError(f"model {name}: architecture {import_path} is not callable")
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _arguments(arguments: dict[str, object]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in arguments.items())


def check_outputs(name: str, outputs: int, labels: int) -> None:
    """A model's forward pass must give one probability per label."""
    if outputs != labels:
        raise ModelSourceError(
            f"model {name} outputs {outputs} classes but its labels file names {labels}: "
            "they must match, in order"
        )
