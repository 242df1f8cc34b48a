"""What the client returns: typed, frozen values built from imgclf.v1 messages."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

import grpc

from imgclf.errors import ImgclfError, error_for


class DeviceKind(str, enum.Enum):
    """The kind of core a model replica is pinned to."""

    UNSPECIFIED = "unspecified"
    CPU = "cpu"
    GPU = "gpu"
    NEURON_CORE = "neuron_core"


class Backend(str, enum.Enum):
    """The runtime that executes the model."""

    UNSPECIFIED = "unspecified"
    CPU = "cpu"
    CUDA = "cuda"
    NEURON = "neuron"
    NEURONX = "neuronx"
    NULL = "null"  # no model: fixed probabilities (serving-path benchmarks)


class HealthStatus(str, enum.Enum):
    """grpc.health.v1 serving status: SERVING once every model replica has warmed up."""

    UNKNOWN = "UNKNOWN"
    SERVING = "SERVING"
    NOT_SERVING = "NOT_SERVING"
    SERVICE_UNKNOWN = "SERVICE_UNKNOWN"


@dataclass(frozen=True)
class Prediction:
    """One ImageNet class: its label, index and softmax probability in [0, 1]."""

    label: str
    class_index: int
    probability: float


@dataclass(frozen=True)
class ServedBy:
    """The Ray Serve replica and the cores that ran an image."""

    replica_id: str
    device_kind: DeviceKind
    core_ids: tuple[int, ...]
    backend: Backend
    node_id: str


@dataclass(frozen=True)
class Classification:
    """The top-k predictions for one image, most probable first."""

    model: str
    predictions: tuple[Prediction, ...]
    served_by: ServedBy | None
    ok: Literal[True] = True

    @property
    def top(self) -> Prediction:
        """The most probable class."""
        return self.predictions[0]

    def as_dict(self) -> dict[str, float]:
        """{label: probability}, most probable first: the eks-neuron prototype's shape."""
        return {p.label: p.probability for p in self.predictions}


@dataclass(frozen=True)
class ItemError:
    """Why one image of a batch failed; the batch's other images are unaffected.

    `reason` is imgclf's finer reason ("INVALID_IMAGE", ...); images the client could not
    read or send get "UNREADABLE_FILE" or "IMAGE_TOO_LARGE" without reaching the server.
    """

    index: int
    code: grpc.StatusCode
    reason: str
    message: str
    served_by: ServedBy | None = None
    ok: Literal[False] = False

    def exception(self, request_id: str | None = None) -> ImgclfError:
        """The exception `classify` would have raised for this image."""
        return error_for(self.code, self.message, self.reason, request_id)


BatchItem = Classification | ItemError
"""One image's outcome in a batch: check `item.ok` (or isinstance) before reading it."""


@dataclass(frozen=True)
class ModelInfo:
    """One deployed model, as ListModels describes it."""

    name: str
    input_height: int
    input_width: int
    num_classes: int
    backend: Backend
    device_kind: DeviceKind
    replicas: int
    max_batch_size: int
    # The deployed version ("" from servers before 0.2).
    version: str = ""


@dataclass(frozen=True)
class Limits:
    """The server's per-call bounds; the client splits batches to stay within them."""

    max_images_per_batch: int
    max_image_bytes: int
    max_image_pixels: int
    max_request_bytes: int


@dataclass(frozen=True)
class ServerModels:
    """What the server serves: its models, the default one, and its per-call limits."""

    models: tuple[ModelInfo, ...]
    default_model: str
    limits: Limits

    def get(self, name: str) -> ModelInfo | None:
        """The model called `name`, or None."""
        return next((model for model in self.models if model.name == name), None)
