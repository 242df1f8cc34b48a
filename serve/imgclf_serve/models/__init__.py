"""The model registry: every model the server can deploy, by name."""

from __future__ import annotations

from imgclf_serve.errors import ModelNotFound
from imgclf_serve.models import efficientnet_lite0, null, resnet50
from imgclf_serve.models.labels import imagenet_labels
from imgclf_serve.models.spec import ModelSpec

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec for spec in (efficientnet_lite0.SPEC, resnet50.SPEC, null.SPEC)
}

DEFAULT_MODEL = efficientnet_lite0.SPEC.name


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ModelNotFound(f"unknown model {name!r}; known models: {known}") from None


__all__ = ["DEFAULT_MODEL", "REGISTRY", "ModelSpec", "get_spec", "imagenet_labels"]
