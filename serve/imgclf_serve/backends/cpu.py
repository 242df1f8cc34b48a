"""PyTorch on the CPU, fp32, with intra-op threads sized to the replica's CPU share."""

from __future__ import annotations

import numpy as np
import torch

from imgclf_serve.backends.base import Backend, BackendName


class CpuBackend(Backend):
    name = BackendName.CPU

    def __init__(self, module: torch.nn.Module, threads: int) -> None:
        self._module = module.eval()
        self._threads = max(1, threads)

    def init_thread(self) -> None:
        torch.set_num_threads(self._threads)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = self._module(torch.from_numpy(batch))
            return torch.softmax(logits.float(), dim=-1).numpy()
