"""What the ingress sends a model replica and what it returns: plain types, no protos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from imgclf_serve.devices import DeviceKind
from imgclf_serve.errors import ClassifyError, Code, Reason

# One image as the ingress sends it: encoded bytes, or pixels the caller preprocessed
# (the Open Inference Protocol's PIXELS input).
ImagePayload: TypeAlias = bytes | np.ndarray


@dataclass(frozen=True)
class Prediction:
    """One class and its softmax probability in [0, 1]."""

    label: str
    class_index: int
    probability: float


@dataclass(frozen=True)
class ServedBy:
    """The replica and core that ran an image."""

    replica_id: str
    device_kind: DeviceKind
    core_ids: tuple[int, ...]
    backend: str
    node_id: str


@dataclass(frozen=True)
class ItemError:
    """Why one image failed; the message does not yet name the image's index."""

    code: Code
    reason: Reason
    message: str

    @classmethod
    def from_exception(cls, exc: ClassifyError) -> ItemError:
        return cls(exc.code, exc.reason, exc.message)

    def to_exception(self) -> ClassifyError:
        return ClassifyError(self.message, self.code, self.reason)


@dataclass(frozen=True)
class ItemResult:
    """The outcome for one image: predictions, or an error."""

    predictions: tuple[Prediction, ...] = ()
    served_by: ServedBy | None = None
    error: ItemError | None = None


@dataclass(frozen=True)
class ReplicaInfo:
    """What a replica says about itself, for ListModels and health checks."""

    model: str
    input_size: int
    num_classes: int
    max_batch_size: int
    served_by: ServedBy
    # The version this replica was deployed with (ModelConfig.version).
    version: str = "1"
