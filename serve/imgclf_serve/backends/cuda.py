"""PyTorch on one NVIDIA GPU (the one Ray exposes through CUDA_VISIBLE_DEVICES): fp16,
channels_last."""

from __future__ import annotations

import numpy as np
import torch

from imgclf_serve.backends.base import Backend, BackendName


class CudaBackend(Backend):
    name = BackendName.CUDA

    def __init__(self, module: torch.nn.Module) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError("backend cuda: torch sees no CUDA device")
        self._device = torch.device("cuda", 0)
        self._module = module.eval().to(self._device).half()
        self._module = self._module.to(memory_format=torch.channels_last)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            images = torch.from_numpy(batch).to(self._device)
            images = images.half().contiguous(memory_format=torch.channels_last)
            probabilities = torch.softmax(self._module(images).float(), dim=-1)
            return probabilities.cpu().numpy()
