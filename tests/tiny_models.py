"""A tiny image classifier for tests of models of your own: ten colour classes, any input
size (3 channels), untrained unless a test trains it."""

from __future__ import annotations

import torch

COLORS = ["red", "green", "blue", "yellow", "cyan", "magenta", "white", "black", "gray", "orange"]


class Tiny(torch.nn.Module):
    def __init__(self, classes: int = len(COLORS)) -> None:
        super().__init__()
        self.features = torch.nn.Conv2d(3, 8, 3)
        self.head = torch.nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.features(x)).mean(dim=(2, 3)))
