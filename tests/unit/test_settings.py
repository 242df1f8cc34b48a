"""settings: the Serve application's arguments are checked with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from imgclf_serve.settings import (
    AppArgs,
    BatchingConfig,
    IngressUserConfig,
    ModelConfig,
    ReplicaUserConfig,
)

SERVE_CONFIG = Path(__file__).parents[2] / "serve" / "serve_config.yaml"


def test_defaults_serve_the_embedded_model() -> None:
    args = AppArgs()
    assert [m.name for m in args.models] == ["efficientnet-lite0"]
    assert args.default_model_name == "efficientnet-lite0"


def test_the_serve_config_file_validates() -> None:
    config = yaml.safe_load(SERVE_CONFIG.read_text())
    (app,) = config["applications"]
    args = AppArgs.model_validate(app["args"])
    assert args.default_model_name == "efficientnet-lite0"
    schemas = {"ClassifierIngress": IngressUserConfig}
    for deployment in app["deployments"]:
        if "user_config" in deployment:
            schema = schemas.get(deployment["name"], ReplicaUserConfig)
            schema.model_validate(deployment["user_config"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"models": [{"name": "vgg"}]}, "unknown model 'vgg': the presets are"),
        ({"models": []}, "at least 1 item"),
        ({"models": [{"name": "resnet50"}, {"name": "resnet50"}]}, "models listed twice"),
        ({"default_model": "resnet50"}, "default_model 'resnet50' is not among the models"),
        (
            {"models": [{"name": "resnet50", "backend": "cuda", "device": "neuron_core"}]},
            "runs on device gpu",
        ),
        ({"models": [{"name": "resnet50", "replicas": 0}]}, "greater than or equal to 1"),
        ({"modles": []}, "Extra inputs are not permitted"),
        ({"limits": {"max_images_per_batch": 0}}, "greater than or equal to 1"),
    ],
)
def test_bad_args_are_refused_with_a_reason(args: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AppArgs.model_validate(args)


def test_batching_bounds() -> None:
    with pytest.raises(ValidationError, match="max_batch_size"):
        BatchingConfig(max_batch_size=0)
    with pytest.raises(ValidationError, match="batch_wait_timeout_s"):
        BatchingConfig(batch_wait_timeout_s=-1)


def test_user_config_takes_injected_faults_and_refuses_unknown_keys() -> None:
    config = ReplicaUserConfig.model_validate(
        {"max_batch_size": 4, "inject_faults": {"fail_health_check_on_cores": ["2"]}}
    )
    assert config.inject_faults.fail_health_check_on_cores == ["2"]
    assert ReplicaUserConfig().inject_faults.fail_health_check_on_cores == []
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ReplicaUserConfig.model_validate({"inject_faults": {"fail_everything": True}})


def test_model_paths_are_paths() -> None:
    model = ModelConfig(name="resnet50", weights="/models/r50.pth")  # type: ignore[arg-type]
    assert model.weights == Path("/models/r50.pth")


def test_torch_threads_default_to_the_cpu_share() -> None:
    assert ModelConfig(name="efficientnet-lite0", cpus_per_replica=0.5).cpu_threads() == 1
    assert ModelConfig(name="efficientnet-lite0", cpus_per_replica=2).cpu_threads() == 2
    tuned = ModelConfig(name="efficientnet-lite0", cpus_per_replica=1, torch_threads=2)
    assert tuned.cpu_threads() == 2


def test_the_config_choices_are_the_backends_and_core_kinds_plus_auto() -> None:
    from imgclf_serve.backends.base import BackendName
    from imgclf_serve.devices import DeviceKind
    from imgclf_serve.settings import BackendChoice, DeviceChoice

    assert {c.value for c in BackendChoice} == {b.value for b in BackendName} | {"auto"}
    assert {c.value for c in DeviceChoice} == {k.value for k in DeviceKind} | {"auto"}


def test_an_unknown_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(ValidationError) as raised:
        ModelConfig(name="efficientnet-lite0", backend="tpu")
    assert "'auto', 'cpu', 'cuda', 'neuron', 'neuronx' or 'null'" in str(raised.value)


def _defaults_restated(given: object, default: object, where: str) -> list[str]:
    """Paths in `given` (a config section) whose value equals the code's default."""
    if isinstance(given, dict) and isinstance(default, dict):
        found = []
        for key, value in given.items():
            if key in default:
                found += _defaults_restated(value, default[key], f"{where}.{key}")
        return found
    return [where] if given == default else []


def test_the_serve_config_file_sets_only_what_differs_from_the_code_defaults() -> None:
    """imgclf_serve.settings is the one source of defaults: the config file overrides, it never
    restates (a restated default would silently stay behind when the code's changes)."""
    from imgclf_serve.settings import (
        INGRESS_MAX_ONGOING_REQUESTS,
        MODEL_MAX_ONGOING_REQUESTS,
        MODEL_MAX_QUEUED_REQUESTS,
        ModelConfig,
    )

    (app,) = yaml.safe_load(SERVE_CONFIG.read_text())["applications"]
    args = app["args"]
    restated = []
    for name, section in args.items():
        if name == "models":
            for model in section:
                default = ModelConfig(name=model["name"]).model_dump(mode="json")
                restated += _defaults_restated(model, {**default, "name": None}, "models[]")
        else:
            default = AppArgs().model_dump(mode="json")[name]
            restated += _defaults_restated(section, default, name)
    options = {
        "ClassifierIngress": {"max_ongoing_requests": INGRESS_MAX_ONGOING_REQUESTS,
                              "user_config": IngressUserConfig().model_dump(mode="json")},
    }  # fmt: skip
    model_options = {
        "max_ongoing_requests": MODEL_MAX_ONGOING_REQUESTS,
        "max_queued_requests": MODEL_MAX_QUEUED_REQUESTS,
        "user_config": ReplicaUserConfig().model_dump(mode="json"),
    }
    for deployment in app["deployments"]:
        default = options.get(deployment["name"], model_options)
        restated += _defaults_restated(deployment, default, f"deployments.{deployment['name']}")
    assert restated == []


def test_a_restated_default_is_found() -> None:
    assert _defaults_restated({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}, "x") == ["x.a.b"]


def test_autoscaling_is_checked_and_excludes_a_fixed_count() -> None:
    from imgclf_serve.settings import AutoscalingConfig, ModelConfig

    scaled = ModelConfig(name="efficientnet-lite0", autoscaling={"max_replicas": 4})
    assert scaled.autoscaling == AutoscalingConfig(max_replicas=4)
    assert scaled.autoscaling.serve_options()["max_replicas"] == 4
    with pytest.raises(ValidationError, match="not both"):
        ModelConfig(name="efficientnet-lite0", replicas=2, autoscaling={"max_replicas": 4})
    with pytest.raises(ValidationError, match="below min_replicas"):
        AutoscalingConfig(min_replicas=3, max_replicas=2)
    with pytest.raises(ValidationError, match="min_ready_replicas 2 is more than"):
        ModelConfig(
            name="efficientnet-lite0", min_ready_replicas=2, autoscaling={"max_replicas": 4}
        )


def test_ray_serve_takes_the_autoscaling_options() -> None:
    from ray.serve.config import AutoscalingConfig as RayAutoscaling

    from imgclf_serve.settings import AutoscalingConfig

    options = AutoscalingConfig(min_replicas=2, max_replicas=8).serve_options()
    ray_config = RayAutoscaling(**options)
    assert (ray_config.min_replicas, ray_config.max_replicas) == (2, 8)
