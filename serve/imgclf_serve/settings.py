"""Typed configuration of the Serve application, checked when the application is built.

`AppArgs` is the `args:` of the application in the Serve config file
(serve/serve_config.yaml): what is deployed, where. `ReplicaUserConfig` is the `user_config` of
each model deployment (the config's `deployments:` section): batching, and faults injected for
reliability tests, which a redeploy applies in place without restarting replicas. (A change
to `args` changes the application's code version in Ray Serve and restarts every replica.)
"""

from __future__ import annotations

import enum
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from imgclf_serve.models import DEFAULT_MODEL, REGISTRY, get_spec
from imgclf_serve.models.files import is_s3, split_s3
from imgclf_serve.preprocess import IMAGENET_MEAN, IMAGENET_STD, ImageLimits, PreprocessSpec

if TYPE_CHECKING:
    from imgclf_serve.models import ModelSpec


class BackendChoice(str, enum.Enum):
    """ModelConfig.backend: a backend (backends.base.BackendName), or AUTO to pick one by the
    core a replica holds (backends.resolve_backend)."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    NEURON = "neuron"
    NEURONX = "neuronx"
    NULL = "null"


class DeviceChoice(str, enum.Enum):
    """ModelConfig.device: a core kind (devices.DeviceKind), or AUTO: NeuronCores if the
    cluster has any, else GPUs, else CPU slots."""

    AUTO = "auto"
    NEURON_CORE = "neuron_core"
    GPU = "gpu"
    CPU = "cpu"


# The device each accelerator backend needs.
BACKEND_DEVICE = {
    BackendChoice.NEURON: DeviceChoice.NEURON_CORE,
    BackendChoice.NEURONX: DeviceChoice.NEURON_CORE,
    BackendChoice.CUDA: DeviceChoice.GPU,
}


# Ray Serve deployment options imgclf sets (app.py); the Serve config's `deployments:` entry of
# a deployment overrides them by name.
# Calls one model replica accepts at once: two full batches of single images (one on the core,
# the next filling); a ClassifyBatch share counts as one call. More only lengthens the wait of
# admitted calls under overload (RELIABILITY.md).
MODEL_MAX_ONGOING_REQUESTS = 16
# Calls the ingress holds for a model when all its replicas are full; beyond that a call fails
# at once with RESOURCE_EXHAUSTED instead of queueing without bound (Ray's default, -1).
MODEL_MAX_QUEUED_REQUESTS = 64
# gRPC calls one ingress replica handles at once; it only waits on replicas, so it can hold many.
INGRESS_MAX_ONGOING_REQUESTS = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchingConfig(_Strict):
    """How a replica merges concurrent images into one forward pass (batcher.GreedyBatcher)."""

    max_batch_size: int = Field(8, ge=1, le=512, description="Most images per forward pass.")
    batch_wait_timeout_s: float = Field(
        0.0,
        ge=0,
        le=1,
        description="How long a partial batch waits for more images. One batch runs at a time, "
        "so images that arrive meanwhile form the next batch anyway; waiting on top of that "
        "only adds latency (BENCHMARKS.md: 0 beat 5 ms on every load).",
    )


class FaultInjection(_Strict):
    """Faults a reliability test turns on in running replicas. Off unless set."""

    fail_health_check_on_cores: list[str] = Field(
        default_factory=list,
        description="Replicas pinned to these core ids (e.g. NeuronCore '2', or 'cpu') fail "
        "the canary inference of their health check, as a broken NeuronCore would; Serve "
        "then replaces them.",
    )
    slow_forward_on_cores: list[str] = Field(
        default_factory=list,
        description="Replicas pinned to these core ids sleep `slow_forward_s` before each "
        "forward pass: a straggler (a throttled or noisy core).",
    )
    slow_forward_s: float = Field(
        0.0, ge=0, le=60, description="The straggler's delay per forward pass."
    )
    crash_on_image_sha256: list[str] = Field(
        default_factory=list,
        description="A replica that is given an image with one of these SHA-256 digests exits "
        "at once (os._exit), as a native crash in a decoder or runtime would.",
    )


class ReplicaUserConfig(BatchingConfig):
    """A model deployment's `user_config`: applied by each replica's reconfigure()."""

    inject_faults: FaultInjection = Field(
        FaultInjection(), description="Faults for reliability tests; none by default."
    )


class HedgingConfig(_Strict):
    """Straggler policy for ClassifyBatch shares (straggler.py): a share still unanswered
    `after_median_multiple` times the median share time (and at least `min_delay_s`) is sent
    to another replica too; the first answer wins, the other is cancelled."""

    enabled: bool = Field(True, description="Hedge late shares at all.")
    after_median_multiple: float = Field(
        3.0, ge=1.0, description="A share is late after this many times the median share time."
    )
    min_delay_s: float = Field(
        0.05, ge=0.0, description="The least time before a share counts as late."
    )
    max_hedged_fraction: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="At most this fraction of recent shares is hedged (one slow replica of "
        "four straggles on a quarter of them), so a slow cluster as a whole is not sent "
        "twice the work. A cluster slow all over also raises the median, so few shares are "
        "late by 3x it.",
    )


class IngressUserConfig(_Strict):
    """The ClassifierIngress deployment's `user_config`: applied in place by reconfigure()."""

    hedging: HedgingConfig = Field(
        HedgingConfig(), description="The straggler policy for ClassifyBatch shares."
    )


class AutoscalingConfig(_Strict):
    """Replicas that follow the load (Ray Serve's autoscaling of the model deployment): Serve
    adds replicas while calls in flight per replica stay above `target_ongoing_requests`, and
    removes them when below. Each replica holds one core, so on a cluster that autoscales
    (KubeRay's autoscaler, Karpenter) a replica beyond the free cores brings a new node."""

    min_replicas: int = Field(1, ge=1, description="Replicas kept however idle.")
    max_replicas: int = Field(ge=1, description="The most replicas (cores) the model may take.")
    target_ongoing_requests: float = Field(
        MODEL_MAX_ONGOING_REQUESTS / 4,
        gt=0,
        description="Calls in flight per replica Serve aims for (a ClassifyBatch share counts "
        "as one call): a quarter of what one replica takes at once (max_ongoing_requests), so "
        "replicas are added before calls queue.",
    )
    upscale_delay_s: float = Field(
        10.0, ge=0, description="How long the load must stay high before replicas are added."
    )
    downscale_delay_s: float = Field(
        120.0,
        ge=0,
        description="How long the load must stay low before replicas are removed (a new "
        "replica costs a model load and warm-up).",
    )
    metrics_interval_s: float = Field(
        2.0, gt=0, description="How often replicas report their load to Serve's controller."
    )
    look_back_period_s: float = Field(
        10.0, gt=0, description="The window Serve averages the load over."
    )

    @model_validator(mode="after")
    def _check(self) -> AutoscalingConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"autoscaling.max_replicas ({self.max_replicas}) is below min_replicas "
                f"({self.min_replicas})"
            )
        return self

    def serve_options(self) -> dict[str, float | int]:
        """Ray Serve's `autoscaling_config` for the deployment."""
        return self.model_dump()


def _location(value: str) -> str:
    if is_s3(value):
        split_s3(value)
    elif "://" in value:
        raise ValueError(f"{value!r}: a model file is a local path or s3://bucket/key")
    return value


# A model file: a local path (in the image or on a volume) or s3://bucket/key.
ModelLocation = Annotated[
    str,
    BeforeValidator(lambda value: os.fspath(value) if isinstance(value, os.PathLike) else value),
    AfterValidator(_location),
]

# "package.module:callable", as Ray Serve's import paths.
IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class SourceConfig(_Strict):
    """A model of your own (not a preset): a TorchScript file, a `torch.export` program, or a
    state dict and the architecture it fits. Paths must be readable where replicas run (in the
    image or on a volume), or s3://bucket/key."""

    torchscript: ModelLocation | None = Field(
        None,
        description="A TorchScript file (`torch.jit.save` of a scripted or traced module): a "
        "path, or s3://bucket/key fetched when a replica starts.",
    )
    exported: ModelLocation | None = Field(
        None,
        description="A `torch.export.save` file (`.pt2`) of a program exported with a dynamic "
        "batch dimension: a path or s3://bucket/key.",
    )
    state_dict: ModelLocation | None = Field(
        None,
        description="A state dict file (`torch.save(module.state_dict())`): a path or "
        "s3://bucket/key.",
    )
    architecture: str | None = Field(
        None,
        description="With `state_dict`: `module:callable` that returns the untrained module, "
        "e.g. `torchvision.models:resnet18`.",
    )
    architecture_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for `architecture`, e.g. `{num_classes: 10}`.",
    )

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        given = [f for f in ("torchscript", "exported", "state_dict") if getattr(self, f)]
        if len(given) != 1:
            raise ValueError(
                "a model source is one of `torchscript`, `exported` or `state_dict`"
                + (f", not {' and '.join(given)}" if given else "")
            )
        if (self.state_dict is None) != (self.architecture is None):
            raise ValueError("`architecture` goes with `state_dict`, and only with it")
        if self.architecture is not None and not IMPORT_PATH.fullmatch(self.architecture):
            raise ValueError(
                f"architecture {self.architecture!r} is not `module:callable`, "
                "e.g. `torchvision.models:resnet18`"
            )
        if self.architecture_args and self.architecture is None:
            raise ValueError("`architecture_args` needs `architecture`")
        return self


class InputConfig(_Strict):
    """How a model wants its images: the short side resized to `resize`, a centred `crop` x
    `crop` square, then per-channel (x / 255 - mean) / std on RGB."""

    resize: int = Field(256, ge=1, le=4096, description="Short side after resizing, pixels.")
    crop: int = Field(224, ge=1, le=4096, description="Side of the centred square, pixels.")
    mean: tuple[float, float, float] = Field(IMAGENET_MEAN, description="RGB means.")
    std: tuple[float, float, float] = Field(IMAGENET_STD, description="RGB standard deviations.")

    @model_validator(mode="after")
    def _check(self) -> InputConfig:
        if self.crop > self.resize:
            raise ValueError(
                f"input.crop ({self.crop}) is larger than input.resize ({self.resize})"
            )
        if min(self.std) <= 0:
            raise ValueError(f"input.std must be positive, got {list(self.std)}")
        return self

    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec(resize=self.resize, crop=self.crop, mean=self.mean, std=self.std)


class ModelConfig(_Strict):
    """One deployed model: which weights, on which backend and cores, how many replicas."""

    name: str = Field(
        description=f"A preset ({', '.join(sorted(REGISTRY))}), or any name for a model of your "
        "own described by `source` and `labels`."
    )
    version: str = Field(
        "1",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="This model's version (e.g. `2` or `2026-12-01`), which ListModels and the "
        "Open Inference Protocol report. Deploying a new version (with its new `source` or "
        "`weights`) replaces the replicas by a rolling update.",
    )
    source: SourceConfig | None = Field(
        None, description="Your own model's file; unset for a preset."
    )
    labels: ModelLocation | None = Field(
        None,
        description="With `source`: a UTF-8 text file, one class name per line, in the order "
        "of the model's outputs; a path or s3://bucket/key.",
    )
    input: InputConfig | None = Field(
        None, description="With `source`: resizing and normalisation; default: ImageNet's."
    )
    weights: Path | None = Field(
        None, description="A preset's state dict file; default: the preset's embedded weights."
    )
    artifact: Path | None = Field(
        None,
        description="A model compiled by `imgclf-compile` (for a model of your own: from its "
        "`source`, with `--config`); the neuron backends need one.",
    )
    backend: BackendChoice = Field(
        BackendChoice.AUTO,
        description="The runtime; auto: the model's own default, else by device. `null` "
        "returns fixed probabilities without decoding or computing (serving-path benchmarks).",
    )
    device: DeviceChoice = Field(
        DeviceChoice.AUTO,
        description="The core kind each replica is pinned to; auto: NeuronCores if the cluster "
        "has any, else GPUs, else CPU slots.",
    )
    replicas: int | None = Field(
        None, ge=1, description="Replica count; default: one per core of `device` in the cluster."
    )
    autoscaling: AutoscalingConfig | None = Field(
        None,
        description="Replicas that follow the load, between min and max, instead of a fixed "
        "count (`replicas` must then be unset).",
    )
    cpus_per_replica: float = Field(
        1.0, ge=0, description="CPUs Ray reserves per replica; CPU backends use as many threads."
    )
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="Threads a CPU backend's forward pass uses; default: cpus_per_replica "
        "(at least 1). More than that lowers latency when replicas are idle at the cost of "
        "contention when all are busy.",
    )

    min_ready_replicas: int = Field(
        1,
        ge=1,
        description="Warm replicas the model needs for the health service to report it "
        "SERVING (grpc.health.v1 Check of the model's name, and of the whole server).",
    )

    def cpu_threads(self) -> int:
        return self.torch_threads or max(1, round(self.cpus_per_replica))

    def spec(self) -> ModelSpec:
        """What the server knows of the model before loading it: a preset's, or one read from
        `source`, `labels` and `input` (the labels file is read here)."""
        if self.source is None:
            return get_spec(self.name)
        from imgclf_serve.models.custom import custom_spec

        assert self.labels is not None  # checked in _check
        return custom_spec(self.name, self.source, self.labels, self.input or InputConfig())

    def _source_problems(self) -> list[str]:
        """What is wrong with how the model is named and described: a preset, or a model of
        your own (`source`, `labels`, `input`)."""
        presets = ", ".join(sorted(REGISTRY))
        own = self.source is not None
        checks = (
            (
                not own and self.name not in REGISTRY,
                f"unknown model {self.name!r}: the presets are {presets}; describe a model of "
                "your own with `source` and `labels`",
            ),
            (
                not own and (self.labels is not None or self.input is not None),
                f"model {self.name}: `labels` and `input` describe a model of your own (with "
                "`source`); a preset has its own",
            ),
            (
                own and self.name in REGISTRY,
                f"model {self.name!r} has a `source` but is a preset's name ({presets}): name "
                "your own model differently",
            ),
            (
                own and self.labels is None,
                f"model {self.name}: a model with `source` needs `labels`",
            ),
            (
                own and self.weights is not None,
                f"model {self.name}: `weights` are a preset's; your own model's file is its "
                "`source`",
            ),
        )
        return [message for wrong, message in checks if wrong]

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        problems = self._source_problems()
        if problems:
            raise ValueError(problems[0])
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError(
                f"model {self.name}: set `replicas` (a fixed count) or `autoscaling`, not both"
            )
        if self.autoscaling is not None and self.min_ready_replicas > self.autoscaling.min_replicas:
            raise ValueError(
                f"model {self.name}: min_ready_replicas {self.min_ready_replicas} is more than "
                f"autoscaling.min_replicas {self.autoscaling.min_replicas}"
            )
        wanted = BACKEND_DEVICE.get(self.backend)
        if wanted and self.device not in (DeviceChoice.AUTO, wanted):
            raise ValueError(
                f"model {self.name}: backend {self.backend.value} runs on device "
                f"{wanted.value}, not {self.device.value}"
            )
        return self


class LimitsConfig(_Strict):
    """Per-call bounds; a request beyond them gets INVALID_ARGUMENT naming the limit."""

    max_images_per_batch: int = Field(
        256, ge=1, le=65536, description="Images in one ClassifyBatch or ModelInfer call."
    )
    max_image_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="Encoded bytes of one image (20 MiB)."
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=1,
        description="Width x height of one image, read from its header before decoding "
        "(decompression bombs are refused unread).",
    )
    max_request_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1,
        le=64 * 1024 * 1024,
        description="Largest sum of image bytes in one call; the gRPC proxy refuses bigger "
        "messages outright (front.MAX_MESSAGE_BYTES).",
    )

    def image_limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels)


class AdmissionConfig(_Strict):
    """Admission by work (admission.py): images and bytes in flight. A call over a bound gets
    RESOURCE_EXHAUSTED before any of its images is decoded. An admitted call waits at most
    for the images admitted ahead of it on its replica: about `replica_max_images` /
    (one replica's images per second), RELIABILITY.md "Admission"."""

    ingress_max_images: int = Field(
        512,
        ge=1,
        description="Images in flight through one ingress replica; at least "
        "limits.max_images_per_batch, so that any valid call fits.",
    )
    ingress_max_bytes: int = Field(
        256 * 1024 * 1024, ge=1, description="Bytes of images in flight through one ingress."
    )
    replica_max_images: int | None = Field(
        None,
        ge=1,
        description="Images one model replica holds (decoding, queued, on the core); a share "
        "beyond it fails its images with RESOURCE_EXHAUSTED (a replica with none admits any "
        "share). Default: the ingress replicas' bound spread over the model's replicas, so "
        "replicas refuse only what the ingresses would not have sent. Only 2 x max_batch_size "
        "of them are decoded at a time.",
    )

    def replica_bound(self, ingress_replicas: int, model_replicas: int) -> int:
        if self.replica_max_images is not None:
            return self.replica_max_images
        return -(-ingress_replicas * self.ingress_max_images // model_replicas)


class IngressConfig(_Strict):
    """The ClassifierIngress replicas: gRPC edge, validation, fan-out over model replicas."""

    replicas: int | None = Field(
        None,
        ge=1,
        description="Ingress replicas; default: on each node with CPUs, one per "
        "`cores_per_replica` model cores (at least one per node).",
    )
    cores_per_replica: float = Field(
        2,
        gt=0,
        description="Model cores (NeuronCores, GPUs or CPU slots) one ingress replica serves "
        "when `replicas` is unset; below 1 for several per core (e.g. 0.5: two per core). "
        "One ingress replica carried ~3.4k images/s as ClassifyBatch(32) but only ~200 "
        "Classify calls/s on a 2-vCPU VM (BENCHMARKS.md, capacity model).",
    )
    cpus_per_replica: float = Field(
        0.5,
        ge=0,
        description="CPUs Ray reserves per ingress replica. More than 0 keeps ingress replicas "
        "off a head node started with num-cpus 0 and out of the model replicas' CPU slots.",
    )


class AppArgs(_Strict):
    """Arguments of `imgclf_serve.app:build_app`."""

    models: list[ModelConfig] = Field(
        default_factory=lambda: [ModelConfig(name=DEFAULT_MODEL)],
        min_length=1,
        description="The deployed models; the first is the default.",
    )
    default_model: str | None = Field(
        None, description="Model for requests that name none; default: the first model."
    )
    limits: LimitsConfig = Field(LimitsConfig(), description="Per-call bounds.")
    admission: AdmissionConfig = Field(
        AdmissionConfig(), description="Admission by images and bytes in flight."
    )
    ingress: IngressConfig = Field(IngressConfig(), description="The ingress replicas.")

    @model_validator(mode="after")
    def _check(self) -> AppArgs:
        names = [model.name for model in self.models]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"models listed twice: {', '.join(duplicates)}")
        if self.admission.ingress_max_images < self.limits.max_images_per_batch:
            raise ValueError(
                f"admission.ingress_max_images ({self.admission.ingress_max_images}) must be at "
                f"least limits.max_images_per_batch ({self.limits.max_images_per_batch}), or "
                "the largest valid call could never be admitted"
            )
        if self.default_model is not None and self.default_model not in names:
            raise ValueError(
                f"default_model {self.default_model!r} is not among the models: {', '.join(names)}"
            )
        return self

    @property
    def default_model_name(self) -> str:
        return self.default_model or self.models[0].name
