"""build_app: the only place the Serve graph is wired.

    ClassifierIngress x K (gRPC methods, CPU, no model; K per node by AppArgs.ingress)
      -> ModelReplica deployment per model, one replica per core

The Serve config file (serve/serve_config.yaml) names `imgclf_serve.app:build_app` as its
import_path and passes AppArgs as `args`; Ray validates them into AppArgs before the call.
"""

from __future__ import annotations

from typing import Any, cast

import ray
from ray.serve import Application
from ray.serve.config import RequestRouterConfig
from ray.serve.deployment import Deployment

from imgclf_serve.classifier import ServedModel
from imgclf_serve.ingress import ClassifierIngress
from imgclf_serve.placement import ReplicaPlan, plan_ingress, plan_replicas
from imgclf_serve.preprocess import ImageLimits
from imgclf_serve.replica import ModelReplica
from imgclf_serve.settings import (
    INGRESS_MAX_ONGOING_REQUESTS,
    MODEL_MAX_ONGOING_REQUESTS,
    MODEL_MAX_QUEUED_REQUESTS,
    AppArgs,
    BatchingConfig,
    IngressUserConfig,
    ModelConfig,
)

SHARE_ROUTER = "imgclf_serve.routing:ShareRouter"
INGRESS_NAME = "ClassifierIngress"


def build_app(args: AppArgs | dict[str, Any]) -> Application:
    """Build the imgclf application, placing replicas by the running cluster's resources."""
    if not isinstance(args, AppArgs):
        args = AppArgs.model_validate(args)
    ingress_plan = plan_ingress(args.ingress, _alive_node_resources())
    plans = plan_replicas(args.models, ray.cluster_resources(), reserved_cpus=ingress_plan.cpus)
    image_limits = args.limits.image_limits()
    handles = {
        model.name: _model_deployment(
            model,
            plans[model.name],
            image_limits,
            args.admission.replica_bound(ingress_plan.replicas, plans[model.name].replicas),
        )
        for model in args.models
    }
    specs = {model.name: model.spec() for model in args.models}
    served = {
        model.name: ServedModel(
            replicas=plans[model.name].replicas,
            num_classes=specs[model.name].num_classes,
            input_size=specs[model.name].input_size,
            version=model.version,
            min_ready_replicas=_min_ready(model, plans[model.name]),
        )
        for model in args.models
    }
    ingress = cast(Deployment, ClassifierIngress).options(
        name=INGRESS_NAME,
        num_replicas=ingress_plan.replicas,
        ray_actor_options={"num_cpus": ingress_plan.cpus_per_replica},
        max_ongoing_requests=INGRESS_MAX_ONGOING_REQUESTS,
        # Defaults; the Serve config's `deployments:` entry for the ingress overrides them.
        user_config=IngressUserConfig().model_dump(),
    )
    return ingress.bind(handles, served, args.default_model_name, args.limits, args.admission)


def _min_ready(model: ModelConfig, plan: ReplicaPlan) -> int:
    if model.min_ready_replicas > plan.replicas:
        raise ValueError(
            f"model {model.name}: min_ready_replicas {model.min_ready_replicas} is more than "
            f"its {plan.replicas} replicas; the health service would never report SERVING"
        )
    return model.min_ready_replicas


def _alive_node_resources() -> list[dict[str, float]]:
    return [node["Resources"] for node in ray.nodes() if node["Alive"]]


def _model_deployment(
    model: ModelConfig, plan: ReplicaPlan, image_limits: ImageLimits, max_images: int
) -> Application:
    if model.autoscaling is not None:
        count: dict[str, Any] = {"autoscaling_config": model.autoscaling.serve_options()}
    else:
        count = {"num_replicas": plan.replicas}
    deployment = cast(Deployment, ModelReplica).options(
        name=model.name,
        **count,
        ray_actor_options=plan.ray_actor_options(),
        # Defaults; the Serve config's `deployments:` section overrides them by name.
        max_ongoing_requests=MODEL_MAX_ONGOING_REQUESTS,
        max_queued_requests=MODEL_MAX_QUEUED_REQUESTS,
        user_config=BatchingConfig().model_dump(),
        # Ray annotates request_router_class as a dict; it takes the import path (a str).
        request_router_config=RequestRouterConfig(request_router_class=SHARE_ROUTER),  # type: ignore[arg-type]
    )
    return deployment.bind(model, plan.device_kind, image_limits, max_images)
