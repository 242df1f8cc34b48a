"""A `torch.export` program's module as the backends hold it: their `eval()` would fail on it
(an exported module refuses train()/eval()), and it already runs as it was exported."""

from __future__ import annotations

import torch


class ExportedModule(torch.nn.Module):
    def __init__(self, program: torch.nn.Module) -> None:
        super().__init__()
        self.program = program

    def train(self, mode: bool = True) -> ExportedModule:
        self.training = mode
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.program(images)
        return result
